/**
 * Test-only: living-index objects written straight from the formats (shared/index/wal.ts,
 * deletion-bitmap.ts, manifest format 2), independent of the worker's writer and of compaction, so
 * the read path is tested against the formats themselves.
 */
import { DeletionBitmap, encodeDeletionBitmap } from "../../shared/index/deletion-bitmap.ts";
import { deletesRelativeKey, indexPrefix, manifestKey, versionFolder, walKey } from "../../shared/index/keys.ts";
import { type IndexManifest, serializeIndexManifest } from "../../shared/index/manifest.ts";
import { batchHash, encodeWalBatch, type WalDocument } from "../../shared/index/wal.ts";
import type { BlobStore } from "../../gpu-worker/src/store/blob-store.ts";
import { nodeChecksums } from "../../gpu-worker/src/store/checksums.ts";

export interface WalFixture {
  store: BlobStore;
  tenant?: string;
  index?: string;
  seq: number;
  modelId: string;
  dim: number;
  upsert?: { id: string; fields: Record<string, unknown>; embedding: ArrayLike<number> }[];
  delete?: string[];
}

/** Writes wal/<seq>.hwal as the worker would have; returns its bytes. */
export async function writeWalFixture(o: WalFixture): Promise<Uint8Array> {
  const tenant = o.tenant ?? "acme";
  const index = o.index ?? "docs";
  const upsert: WalDocument[] = (o.upsert ?? []).map((d) => ({ id: d.id, fields: d.fields }));
  const embeddings = new Float32Array(upsert.length * o.dim);
  (o.upsert ?? []).forEach((d, i) => embeddings.set(Array.from(d.embedding), i * o.dim));
  const deletes = o.delete ?? [];
  const bytes = encodeWalBatch({
    tenant,
    index,
    seq: o.seq,
    batchHash: batchHash(upsert, deletes),
    createdAt: new Date().toISOString(),
    modelId: o.modelId,
    dim: o.dim,
    upsert,
    embeddings,
    delete: deletes,
  });
  await o.store.put(walKey(tenant, index, o.seq), bytes);
  return bytes;
}

/**
 * Republishes a format 1 version (written by writeFixtureIndex at version `from`) as format 2
 * version `to`: the same segment objects by reference (keys relative to the index prefix), the
 * given rows marked deleted in bitmaps written by `to`, and coveredSeq. Returns the manifest.
 */
export async function writeFormat2Version(
  store: BlobStore,
  v1: IndexManifest,
  o: { from: number; to: number; coveredSeq: number; deletedRows?: Record<string, number[]>; tenant?: string; index?: string },
): Promise<IndexManifest> {
  const tenant = o.tenant ?? "acme";
  const index = o.index ?? "docs";
  const base = indexPrefix(tenant, index);
  const shards: IndexManifest["shards"] = [];
  for (const s of v1.shards) {
    const rows = o.deletedRows?.[s.id] ?? [];
    const entry: IndexManifest["shards"][number] = { ...s, key: versionFolder(o.from) + s.key };
    if (rows.length > 0) {
      const bitmap = new DeletionBitmap(s.docCount);
      for (const r of rows) bitmap.add(r);
      const bytes = encodeDeletionBitmap(bitmap);
      const key = deletesRelativeKey(o.to, s.id);
      await store.put(base + key, bytes);
      entry.deletes = { key, bytes: bytes.length, sha256: nodeChecksums.sha256Hex(bytes), count: bitmap.count };
    }
    shards.push(entry);
  }
  const manifest: IndexManifest = { ...v1, version: 2, indexVersion: o.to, shards, coveredSeq: o.coveredSeq };
  await store.put(manifestKey(tenant, index, o.to), new TextEncoder().encode(serializeIndexManifest(manifest)));
  return manifest;
}
