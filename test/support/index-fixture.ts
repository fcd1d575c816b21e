/**
 * Test-only: writes a small index version straight into a BlobStore with encodeShard and a
 * manifest (exact kNN graph per shard), independent of the index builder, so the read path is
 * tested against the format itself. Imported by *.test.ts files and benchmarks.
 */
import { encodeShard, type ShardDtype } from "../../shared/index/format.ts";
import { MANIFEST_FILE, shardRelativeKey } from "../../shared/index/keys.ts";
import { type IndexManifest, serializeIndexManifest } from "../../shared/index/manifest.ts";
import type { BlobStore } from "../../gpu-worker/src/store/blob-store.ts";
import { nodeChecksums } from "../../gpu-worker/src/store/checksums.ts";
import { buildKnnGraph } from "../../gpu-worker/src/index/build/knn-graph.ts";
import { declaredFieldValues } from "../../gpu-worker/src/filter/segment-columns.ts";
import { buildFilterColumns, encodeFilterColumns } from "../../shared/index/filter-columns.ts";
import type { FieldSchema } from "../../shared/filter/schema.ts";

export interface FixtureIndexOptions {
  store: BlobStore;
  /** The version prefix ("" for a bare index folder, e.g. versionPrefix(tenant, index, version)). */
  prefix: string;
  tenant?: string;
  index?: string;
  version?: number;
  modelId: string;
  /** docs × dim, row-major. */
  embeddings: Float32Array;
  dim: number;
  ids: string[];
  /** Stored fields per document; the manifest lists the union of their keys. */
  fields?: Record<string, unknown>[];
  /** Documents per shard, in order; they must add up to ids.length. Default: one shard. */
  shardSizes?: number[];
  dtype?: ShardDtype;
  degree?: number;
  /** Entry rows per shard (local row numbers), by shard position. */
  entryRows?: Uint32Array[];
  /** Declared filterable fields: each shard gets filter columns from its documents' `fields`, the manifest `filterFields`. */
  filterFields?: FieldSchema;
  /** Shard positions written WITHOUT filter columns (a segment from before the fields were declared). */
  withoutFilterColumns?: number[];
  /** Skip writing manifest.json (an interrupted build). */
  withoutManifest?: boolean;
}

export async function writeFixtureIndex(o: FixtureIndexOptions): Promise<IndexManifest> {
  const n = o.ids.length;
  const sizes = o.shardSizes ?? [n];
  if (sizes.reduce((a, b) => a + b, 0) !== n) throw new Error(`shard sizes ${sizes.join("+")} do not add up to ${n} documents`);
  const dtype = o.dtype ?? "float16";
  const fields = o.fields ?? o.ids.map(() => ({}));
  const shards: IndexManifest["shards"] = [];
  let docStart = 0;
  for (const [i, size] of sizes.entries()) {
    const rows = o.embeddings.slice(docStart * o.dim, (docStart + size) * o.dim);
    const graph = await buildKnnGraph(rows, o.dim, { degree: o.degree ?? 8 });
    const bytes = encodeShard(
      {
        ids: o.ids.slice(docStart, docStart + size),
        fields: fields.slice(docStart, docStart + size),
        embeddings: rows,
        dim: o.dim,
        dtype,
        graph: { offsets: graph.offsets, neighbors: graph.neighbors, degree: graph.degree },
        ...(o.entryRows?.[i] ? { entryRows: o.entryRows[i] } : {}),
        ...(o.filterFields && !o.withoutFilterColumns?.includes(i)
          ? {
              filterColumns: encodeFilterColumns(
                buildFilterColumns(
                  o.filterFields,
                  fields.slice(docStart, docStart + size).map((f) => declaredFieldValues(o.filterFields!, f)),
                ),
              ),
            }
          : {}),
      },
      { checksums: nodeChecksums },
    );
    const id = `s${i}`;
    const key = shardRelativeKey(id);
    await o.store.put(o.prefix + key, bytes);
    shards.push({ id, key, bytes: bytes.length, sha256: nodeChecksums.sha256Hex(bytes), docStart, docCount: size });
    docStart += size;
  }
  const manifest: IndexManifest = {
    format: "hypencoder.index",
    version: 1,
    tenant: o.tenant ?? "acme",
    index: o.index ?? "docs",
    indexVersion: o.version ?? 1,
    createdAt: new Date().toISOString(),
    model: { id: o.modelId, embeddingDim: o.dim },
    dtype,
    docCount: n,
    graph: { metric: "l2", degree: Math.max(0, ...shards.map((s) => Math.min(o.degree ?? 8, s.docCount - 1))), builder: "exact", reachableFraction: 1 },
    fields: [...new Set(fields.flatMap((f) => Object.keys(f)))],
    ...(o.filterFields ? { filterFields: o.filterFields } : {}),
    shards,
  };
  if (!o.withoutManifest) await o.store.put(o.prefix + MANIFEST_FILE, new TextEncoder().encode(serializeIndexManifest(manifest)));
  return manifest;
}
