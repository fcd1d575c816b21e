/**
 * Stored embeddings looked up by document id (rerank by id). Each shard gets an id → row map the
 * first time it is asked (LoadedIndex.rowsById, kept while the version is loaded), so an index
 * nobody reranks by id pays nothing for it. Rows a segment's deletion bitmap marks deleted are not
 * found (the rerank request names no tail, so only the version's own deletions apply).
 */
import type { DeletionBitmap } from "../../../shared/index/deletion-bitmap.ts";
import type { DecodedShard } from "../../../shared/index/format.ts";
import type { StoredEmbeddings } from "./index-backend.ts";
import type { LoadedIndex } from "./index-registry.ts";
import { IndexUnavailableError } from "./search-errors.ts";

/**
 * The embeddings of `ids` (duplicates answered once), in request order, in the index's dtype. Ids
 * that no shard holds are `missing`; so are ids whose shard could not be loaded, since they cannot
 * be told apart. If no shard loads at all, that is an error rather than "everything missing".
 */
export async function embeddingsById(
  index: LoadedIndex,
  ids: readonly string[],
  onShardError?: (shardId: string, error: unknown) => void,
): Promise<StoredEmbeddings> {
  const shards: { shard: DecodedShard; rows: ReadonlyMap<string, number>; deleted: DeletionBitmap | undefined }[] = [];
  let firstError: unknown;
  for (const entry of index.manifest.shards) {
    try {
      const [shard, rows, deleted] = await Promise.all([index.shard(entry.id), index.rowsById(entry.id), index.deletionBitmap(entry.id)]);
      shards.push({ shard, rows, deleted });
    } catch (error) {
      firstError ??= error;
      onShardError?.(entry.id, error);
    }
  }
  if (shards.length === 0 && index.manifest.shards.length > 0) {
    throw new IndexUnavailableError(`index ${index.label}: no shard could be loaded`, firstError);
  }

  const dim = index.manifest.model.embeddingDim;
  const found: { id: string; shard: DecodedShard; row: number }[] = [];
  const missing: string[] = [];
  for (const id of new Set(ids)) {
    let hit: { id: string; shard: DecodedShard; row: number } | undefined;
    for (const { shard, rows, deleted } of shards) {
      const row = rows.get(id);
      if (row !== undefined && !deleted?.has(row)) {
        hit = { id, shard, row };
        break;
      }
    }
    if (hit) found.push(hit);
    else missing.push(id);
  }
  const embeddings = index.manifest.dtype === "float16" ? new Uint16Array(found.length * dim) : new Float32Array(found.length * dim);
  found.forEach(({ shard, row }, i) => embeddings.set(shard.embeddings.subarray(row * dim, (row + 1) * dim), i * dim));
  return { ids: found.map((f) => f.id), embeddings, missing };
}
