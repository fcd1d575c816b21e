/**
 * The GPU worker's lifecycle for living indexes, against real S3 (radosgw) and the tiny model:
 * compaction (a built v1 index + a WAL tail written with encodeWalBatch → a format 2 version whose
 * live rows are exactly the expected documents; the merge policy; version 0; cancellation and bad
 * inputs publish nothing), the sweeper (keeps what kept manifests reference, deletes the rest;
 * `everything` empties the prefix), and worker memory (only the newest version of an index stays
 * loaded, read from the /metrics gauges; LRU eviction under a tiny budget), plus the signed routes.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CompactionRequest } from "../shared/api/living-api.ts";
import { signRequest } from "../shared/api/signing.ts";
import type { BuildStatus, SearchParams } from "../shared/api/worker-api.ts";
import { decodeDeletionBitmap } from "../shared/index/deletion-bitmap.ts";
import { decodeShard } from "../shared/index/format.ts";
import { indexPrefix, manifestKey, uploadPrefix, versionPrefix, walKey } from "../shared/index/keys.ts";
import { type IndexManifest, manifestKeyBase, parseIndexManifest } from "../shared/index/manifest.ts";
import { batchHash, encodeWalBatch, type WalDocument } from "../shared/index/wal.ts";
import { halfToFloat32Array, float32ArrayToHalf } from "../shared/qnet/half.ts";
import { BuildManager } from "../gpu-worker/src/index/build/build-manager.ts";
import { runBuild } from "../gpu-worker/src/index/build/run-build.ts";
import { runCompaction, type CompactionDeps } from "../gpu-worker/src/index/compaction/run-compaction.ts";
import { createIndexBackend } from "../gpu-worker/src/index/index-backend-impl.ts";
import { IndexRegistry } from "../gpu-worker/src/index/index-registry.ts";
import { ShardCache } from "../gpu-worker/src/index/shard-cache.ts";
import { SweepRefusedError } from "../gpu-worker/src/index/sweep/errors.ts";
import { runSweep } from "../gpu-worker/src/index/sweep/run-sweep.ts";
import { writeTinyCheckpoint } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../gpu-worker/src/model/import-checkpoint.ts";
import { HypencoderRuntime } from "../gpu-worker/src/model/runtime/runtime.ts";
import { createService } from "../gpu-worker/src/service/app.ts";
import { createLogger } from "../gpu-worker/src/service/logger.ts";
import type { BlobStore } from "../gpu-worker/src/store/blob-store.ts";
import { nodeChecksums } from "../gpu-worker/src/store/checksums.ts";
import { S3Store } from "../gpu-worker/src/store/s3-store.ts";
import { writeFixtureIndex } from "./support/index-fixture.ts";
import { freshBucket, s3TestClient } from "./support/s3.ts";

const TENANT = "acme";
const DOC_MAX_LENGTH = 32;
const WORDS = "graph search query network weight embedding shard index model token vector score".split(" ");
const textOf = (name: string, i: number) => `${name} ${i}: ${Array.from({ length: 10 }, (_, j) => WORDS[(i * 5 + j * (i % 4 + 1)) % WORDS.length]).join(" ")}`;
const logLines: string[] = [];
const logger = createLogger({ level: "info", destination: { write: (line: string) => void logLines.push(line) } });

let root: string;
let runtime: HypencoderRuntime;
let dim: number;
let modelId: string;
let store: S3Store;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "index-lifecycle-"));
  await writeTinyCheckpoint(join(root, "checkpoint"), { seed: 5 });
  await importCheckpoint(join(root, "checkpoint"), join(root, "model"));
  runtime = await HypencoderRuntime.load(join(root, "model"), { device: "cpu", intraOpThreads: 2 });
  dim = runtime.manifest.embeddingDim;
  modelId = runtime.manifest.modelId;
  store = new S3Store({ client: await s3TestClient(), bucket: await freshBucket("index-lifecycle"), prefix: "store" });
}, 240_000);

afterAll(async () => {
  await runtime?.close();
  await rm(root, { recursive: true, force: true });
});

/** Writes WAL batch `seq` of `index` as the worker's POST /v1/wal would: embedded upserts, create-if-absent. */
async function writeWal(index: string, seq: number, upsert: Array<{ id: string; text: string } & Record<string, unknown>>, deletes: string[] = []) {
  const docs: WalDocument[] = upsert.map(({ id, ...fields }) => ({ id, fields }));
  const embeddings = docs.length > 0 ? await runtime.embedDocuments(docs.map((d) => d.fields.text as string), { maxLength: DOC_MAX_LENGTH }) : new Float32Array(0);
  const batch = { tenant: TENANT, index, seq, batchHash: batchHash(docs, deletes), createdAt: new Date().toISOString(), modelId, dim, upsert: docs, embeddings, delete: deletes };
  await store.put(walKey(TENANT, index, seq), encodeWalBatch(batch), { ifAbsent: true });
  return batch;
}

async function readManifest(index: string, version: number): Promise<IndexManifest> {
  return parseIndexManifest(new TextDecoder().decode(await store.get(manifestKey(TENANT, index, version))));
}

/** Every live row of a version, decoded straight from the store: id → its segment, fields and embedding. */
async function liveRows(index: string, version: number) {
  const manifest = await readManifest(index, version);
  const base = manifestKeyBase(manifest, versionPrefix(TENANT, index, version));
  const rows = new Map<string, { segment: string; fields: Record<string, unknown>; embedding: Float32Array }>();
  const deleted = new Map<string, string[]>();
  for (const s of manifest.shards) {
    const shard = decodeShard(await store.get(base + s.key), { bytes: s.bytes, sha256: s.sha256 }, { checksums: nodeChecksums });
    const bits = s.deletes ? await store.get(base + s.deletes.key) : undefined;
    if (bits) expect(nodeChecksums.sha256Hex(bits)).toBe(s.deletes!.sha256);
    const bitmap = bits ? decodeDeletionBitmap(bits, s.docCount) : undefined;
    deleted.set(s.id, shard.ids.filter((_, r) => bitmap?.has(r)));
    shard.ids.forEach((id, r) => {
      if (bitmap?.has(r)) return;
      expect(rows.has(id), `id ${id} is live twice`).toBe(false);
      const e = shard.embeddings.subarray(r * dim, (r + 1) * dim);
      rows.set(id, { segment: s.id, fields: shard.fields(r), embedding: e instanceof Uint16Array ? halfToFloat32Array(e) : e.slice() });
    });
  }
  return { manifest, rows, deleted };
}

const halfRounded = (v: Float32Array) => halfToFloat32Array(float32ArrayToHalf(v));
const compactionDeps = (extra: Partial<CompactionDeps> = {}): CompactionDeps => ({ store, model: { modelId, embeddingDim: dim }, onWarning: () => {}, ...extra });
const compaction = (index: string, baseVersion: number, version: number, toSeq: number, extra: Partial<CompactionRequest> = {}): CompactionRequest => ({
  tenant: TENANT, index, baseVersion, version, toSeq, degree: 16, ...extra,
});

async function waitForJob(manager: BuildManager, jobId: string): Promise<BuildStatus> {
  for (let i = 0; i < 600; i++) {
    const status = manager.get(TENANT, jobId)!;
    if (status.state === "succeeded" || status.state === "failed") return status;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${jobId} did not finish`);
}

const BASE_DOCS = Array.from({ length: 360 }, (_, i) => ({ id: `doc-${i}`, text: textOf("doc", i) }));

describe("compaction", () => {
  const INDEX = "docs";
  let baseManifest: IndexManifest;

  beforeAll(async () => {
    const upload = `${uploadPrefix(TENANT, "u1")}docs.jsonl`;
    await store.put(upload, new TextEncoder().encode(BASE_DOCS.map((d) => JSON.stringify(d)).join("\n") + "\n"));
    baseManifest = await runBuild(
      { tenant: TENANT, index: INDEX, version: 1, inputs: [{ format: "jsonl", key: upload }], degree: 16, reverseShare: 0.2, entryRows: 16, storeFields: ["text"], dtype: "float16", shardBytes: 1 << 16, docMaxLength: DOC_MAX_LENGTH, coveredSeq: 0 },
      { runtime, store, inputKeyPrefix: `tenants/${TENANT}/`, onWarning: () => {} },
    );
    expect(baseManifest.shards.length).toBeGreaterThanOrEqual(2);
  }, 240_000);

  it("folds upserts, a replace and deletes of a tail into v2: bitmaps hide exactly the replaced and deleted rows, the new segment holds the tail", async () => {
    const shard0 = baseManifest.shards[0]!;
    const lastShard = baseManifest.shards.at(-1)!;
    const inLast = `doc-${lastShard.docStart + 3}`;
    const s1 = await writeWal(INDEX, 1, Array.from({ length: 10 }, (_, i) => ({ id: `new-${i}`, text: textOf("new", i), tag: `t${i}` })));
    const s2 = await writeWal(INDEX, 2, [{ id: "doc-5", text: "doc 5 rewritten: shard index vector", tag: "replaced" }], ["doc-7", "new-3"]);
    // seq 3 is a gap (a burned seq): no object.
    const s4 = await writeWal(INDEX, 4, [{ id: "new-3", text: textOf("again", 3) }, { id: "new-11", text: textOf("new", 11) }], [inLast, "never-there"]);

    const manager = new BuildManager({ runtime, store, logger });
    const started = manager.startCompaction(compaction(INDEX, 1, 2, 4));
    expect(started).toMatchObject({ state: "queued", version: 2, index: INDEX });
    const status = await waitForJob(manager, started.jobId);
    expect(status, JSON.stringify(status.error)).toMatchObject({ state: "succeeded", progress: { docsTotal: 12, docsEncoded: 12, graphPercent: 100 } });
    expect(status.progress.bytesWritten).toBeGreaterThan(0);

    const { manifest, rows, deleted } = await liveRows(INDEX, 2);
    expect(manifest).toMatchObject({ version: 2, indexVersion: 2, coveredSeq: 4, dtype: "float16", model: { id: modelId, embeddingDim: dim } });
    expect(manifest.fields).toEqual(["text", "tag"]);
    // Base segments kept by reference (index-relative keys, ids prefixed with their version), then the tail's segment.
    expect(manifest.shards.map((s) => s.id)).toEqual([...baseManifest.shards.map((s) => `v000001-${s.id}`), "v000002-t00000"]);
    expect(manifest.shards[0]!.key).toBe(`versions/v000001/${shard0.key}`);
    expect(manifest.shards.at(-1)!.key).toMatch(/^versions\/v000002\/shards\/[0-9a-f]{8}\/v000002-t00000\.hxs$/);
    expect(manifest.shards[0]!.deletes).toMatchObject({ key: "versions/v000002/deletes/v000001-s00000.hxd", count: 2 });
    expect(deleted.get("v000001-s00000")!.sort()).toEqual(["doc-5", "doc-7"]);
    expect(deleted.get(`v000001-${lastShard.id}`)).toEqual([inLast]);
    for (const s of manifest.shards.slice(1, -2)) expect(s.deletes).toBeUndefined();

    const tailIds = ["new-0", "new-1", "new-2", "new-4", "new-5", "new-6", "new-7", "new-8", "new-9", "doc-5", "new-3", "new-11"];
    const expected = new Set([...BASE_DOCS.map((d) => d.id).filter((id) => !["doc-5", "doc-7", inLast].includes(id)), ...tailIds]);
    expect(new Set(rows.keys())).toEqual(expected);
    expect([...rows].filter(([, r]) => r.segment === "v000002-t00000").map(([id]) => id)).toEqual(tailIds);
    // The newest write wins, with all its fields, and its embedding straight from the WAL.
    expect(rows.get("doc-5")!.fields).toEqual({ text: "doc 5 rewritten: shard index vector", tag: "replaced" });
    expect(rows.get("new-3")!.fields).toEqual({ text: textOf("again", 3) });
    expect(rows.get("doc-5")!.embedding).toEqual(halfRounded(s2.embeddings.slice(0, dim)));
    expect(rows.get("new-11")!.embedding).toEqual(halfRounded(s4.embeddings.slice(dim, 2 * dim)));
    expect(rows.get("new-0")!.embedding).toEqual(halfRounded(s1.embeddings.slice(0, dim)));

    const done = logLines.map((l) => JSON.parse(l)).find((l) => l.msg === "index compaction succeeded" && l.jobId === started.jobId);
    expect(done).toMatchObject({ tailBatches: 3, tailDocs: 12, rowsHidden: 3, segmentsWritten: 1 });
    expect(logLines.join("\n")).not.toContain("rewritten"); // no document text in logs
    await manager.close();
  }, 120_000);

  it("compacts a format 2 base: a more than half deleted segment is merged, kept bitmaps stay referenced", async () => {
    const v2 = await readManifest(INDEX, 2);
    const last = baseManifest.shards.at(-1)!;
    const lastIds = Array.from({ length: last.docCount }, (_, r) => `doc-${last.docStart + r}`);
    const doomed = lastIds.slice(0, Math.ceil(last.docCount * 0.8));
    await writeWal(INDEX, 5, [{ id: "late-1", text: textOf("late", 1) }], doomed);
    const result = await runCompaction(compaction(INDEX, 2, 3, 5), compactionDeps());
    expect(result.stats).toMatchObject({ segmentsMerged: 1, segmentsDropped: 0, tailDocs: 1 });

    const { manifest, rows } = await liveRows(INDEX, 3);
    expect(manifest.shards.map((s) => s.id)).toEqual([...v2.shards.filter((s) => s.id !== `v000001-${last.id}`).map((s) => s.id), "v000003-m00000", "v000003-t00000"]);
    // s00000's bitmap is unchanged: still the one v2 wrote.
    expect(manifest.shards[0]!.deletes).toEqual(v2.shards[0]!.deletes);
    const merged = [...rows].filter(([, r]) => r.segment === "v000003-m00000").map(([id]) => id);
    expect(merged.sort()).toEqual(lastIds.filter((id) => !doomed.includes(id)).sort());
    expect(manifest.shards.find((s) => s.id === "v000003-m00000")!.deletes).toBeUndefined();
    const before = await liveRows(INDEX, 2);
    expect(new Set(rows.keys())).toEqual(new Set([...[...before.rows.keys()].filter((id) => !doomed.includes(id)), "late-1"]));
  }, 120_000);

  it("merges every small segment with the tail once more than the policy allows", async () => {
    await writeWal(INDEX, 6, [{ id: "late-2", text: textOf("late", 2) }], ["doc-0"]);
    const before = await liveRows(INDEX, 3);
    const result = await runCompaction(compaction(INDEX, 3, 4, 6), compactionDeps({ mergePolicy: { maxSmallSegments: 2 } }));
    expect(result.stats.segmentsKept).toBe(0);
    const { manifest, rows } = await liveRows(INDEX, 4);
    expect(manifest.shards.map((s) => s.id)).toEqual(["v000004-m00000"]);
    expect(manifest.shards[0]!.deletes).toBeUndefined();
    expect(new Set(rows.keys())).toEqual(new Set([...[...before.rows.keys()].filter((id) => id !== "doc-0"), "late-2"]));
    expect(manifest.docCount).toBe(rows.size);
  }, 120_000);

  it("compacts an index that was never built (base version 0), and one whose tail deletes everything", async () => {
    await writeWal("fresh", 1, [{ id: "a", text: textOf("a", 1) }, { id: "b", text: textOf("b", 2) }]);
    await writeWal("fresh", 2, [{ id: "c", text: textOf("c", 3), n: 3 }], ["a"]);
    await runCompaction(compaction("fresh", 0, 1, 2, { dtype: "float32" }), compactionDeps());
    const { manifest, rows } = await liveRows("fresh", 1);
    expect(manifest).toMatchObject({ version: 2, dtype: "float32", coveredSeq: 2, docCount: 2, fields: ["text", "n"] });
    expect([...rows.keys()]).toEqual(["b", "c"]);

    await writeWal("fresh", 3, [], ["b", "c"]);
    await runCompaction(compaction("fresh", 1, 2, 3), compactionDeps());
    const empty = await readManifest("fresh", 2);
    expect(empty).toMatchObject({ docCount: 0, shards: [], coveredSeq: 3 });
  }, 120_000);

  it("splits a large tail into several segments of at most shardBytes", async () => {
    const docs = Array.from({ length: 300 }, (_, i) => ({ id: `big-${i}`, text: textOf("big", i) }));
    await writeWal("big", 1, docs.slice(0, 150));
    await writeWal("big", 2, docs.slice(150));
    await runCompaction(compaction("big", 0, 1, 2), compactionDeps({ shardBytes: 1 << 16 }));
    const { manifest, rows } = await liveRows("big", 1);
    expect(manifest.shards.length).toBeGreaterThanOrEqual(2);
    expect(manifest.shards.map((s) => s.id)).toEqual(manifest.shards.map((_, i) => `v000001-t${String(i).padStart(5, "0")}`));
    for (const s of manifest.shards) expect(s.bytes).toBeLessThanOrEqual(1 << 16);
    expect([...rows.keys()]).toEqual(docs.map((d) => d.id));
  }, 120_000);

  it("a cancelled compaction publishes nothing and leaves no segment behind", async () => {
    await writeWal("cancel", 1, Array.from({ length: 5 }, (_, i) => ({ id: `x${i}`, text: textOf("x", i) })));
    let manager!: BuildManager;
    let jobId = "";
    // Cancel as soon as the first new segment has been written: before the manifest.
    const cancelling: BlobStore = Object.create(store, {
      put: {
        value: async (key: string, body: Uint8Array, options?: object) => {
          await store.put(key, body, options);
          if (key.endsWith(".hxs")) manager.cancel(TENANT, jobId);
        },
      },
    });
    manager = new BuildManager({ runtime, store: cancelling, logger });
    jobId = manager.startCompaction(compaction("cancel", 0, 1, 1)).jobId;
    const status = await waitForJob(manager, jobId);
    expect(status).toMatchObject({ state: "failed", error: { code: "cancelled" } });
    expect(await store.head(manifestKey(TENANT, "cancel", 1))).toBeUndefined();
    expect(await store.list(versionPrefix(TENANT, "cancel", 1))).toEqual([]);
    await manager.close();
  }, 60_000);

  it("fails cleanly on a corrupt WAL batch, a missing base and a corrupt base manifest", async () => {
    const manager = new BuildManager({ runtime, store, logger });
    await writeWal("broken", 1, [{ id: "a", text: textOf("a", 1) }]);
    const bytes = encodeWalBatch({ tenant: TENANT, index: "broken", seq: 2, batchHash: batchHash([], ["a"]), createdAt: new Date().toISOString(), modelId, dim, upsert: [], embeddings: new Float32Array(0), delete: ["a"] });
    bytes[bytes.length - 1]! ^= 0xff;
    await store.put(walKey(TENANT, "broken", 2), bytes);
    const corrupt = await waitForJob(manager, manager.startCompaction(compaction("broken", 0, 1, 2)).jobId);
    expect(corrupt).toMatchObject({ state: "failed", error: { code: "corrupt_index" } });
    expect(await store.list(versionPrefix(TENANT, "broken", 1))).toEqual([]);

    const missing = await waitForJob(manager, manager.startCompaction(compaction("broken", 7, 8, 9)).jobId);
    expect(missing).toMatchObject({ state: "failed", error: { code: "base_not_found" } });

    await store.put(manifestKey(TENANT, "broken", 3), new TextEncoder().encode('{"format":"hypencoder.index","version":2}'));
    const bad = await waitForJob(manager, manager.startCompaction(compaction("broken", 3, 4, 5)).jobId);
    expect(bad).toMatchObject({ state: "failed", error: { code: "corrupt_index" } });
    expect(await store.head(manifestKey(TENANT, "broken", 4))).toBeUndefined();

    // A version that exists is never replaced.
    const taken = await waitForJob(manager, manager.startCompaction(compaction(INDEX, 1, 2, 4)).jobId);
    expect(taken).toMatchObject({ state: "failed", error: { code: "build_conflict" } });
    await manager.close();
  }, 60_000);
});

describe("sweep", () => {
  const INDEX = "swept";

  it("keeps what kept manifests reference (across version folders) and in-progress folders, deletes the rest", async () => {
    const upload = `${uploadPrefix(TENANT, "su1")}docs.jsonl`;
    await store.put(upload, new TextEncoder().encode(BASE_DOCS.slice(0, 120).map((d) => JSON.stringify(d)).join("\n") + "\n"));
    await runBuild(
      { tenant: TENANT, index: INDEX, version: 1, inputs: [{ format: "jsonl", key: upload }], degree: 8, reverseShare: 0, entryRows: 0, storeFields: ["text"], dtype: "float16", shardBytes: 1 << 16, docMaxLength: DOC_MAX_LENGTH },
      { runtime, store, inputKeyPrefix: `tenants/${TENANT}/`, onWarning: () => {} },
    );
    await writeWal(INDEX, 1, [{ id: "w1", text: textOf("w", 1) }], ["doc-1"]);
    await runCompaction(compaction(INDEX, 1, 2, 1), compactionDeps());
    await writeWal(INDEX, 2, [{ id: "w2", text: textOf("w", 2) }], ["doc-2"]);
    await runCompaction(compaction(INDEX, 2, 3, 2), compactionDeps());
    await writeWal(INDEX, 3, [{ id: "w3", text: textOf("w", 3) }]);
    const prefix = indexPrefix(TENANT, INDEX);
    await store.put(`${prefix}versions/v000004/shards/dead0001/s00000.hxs`, new Uint8Array(10)); // a killed build
    await store.put(`${prefix}versions/v000005/shards/live0001/s00000.hxs`, new Uint8Array(10)); // a build in progress

    const v3 = await readManifest(INDEX, 3);
    const referenced = new Set([manifestKey(TENANT, INDEX, 3), ...v3.shards.flatMap((s) => [prefix + s.key, ...(s.deletes ? [prefix + s.deletes.key] : [])])]);
    // v3 keeps v1's segments and v2's tail segment and bitmaps by reference.
    expect([...referenced].some((k) => k.includes("/versions/v000001/"))).toBe(true);
    expect([...referenced].some((k) => k.includes("/versions/v000002/"))).toBe(true);
    const before = await store.list(prefix);

    await store.put(`${prefix}versions/v000009/shards/new00001/s00000.hxs`, new Uint8Array(10)); // reserved after the request was made
    const answer = await runSweep({ tenant: TENANT, index: INDEX, everything: false, keepVersions: [3, 5], walUpToSeq: 2, uploads: ["su1"], versionsUpTo: 8 }, { store, logger });
    const after = await store.list(prefix);
    const expectedKept = [...referenced, `${prefix}versions/v000005/shards/live0001/s00000.hxs`, `${prefix}versions/v000009/shards/new00001/s00000.hxs`, walKey(TENANT, INDEX, 3)].sort();
    expect(after).toEqual(expectedKept);
    expect(answer).toMatchObject({ keptObjects: expectedKept.length, deletedObjects: before.length + 1 - expectedKept.length + 1 });
    expect(await store.list(uploadPrefix(TENANT, "su1"))).toEqual([]);
    // v3 is still whole: a compaction on top of it reads every key it names.
    await runCompaction(compaction(INDEX, 3, 6, 3), compactionDeps());
    expect((await liveRows(INDEX, 6)).rows.has("w3")).toBe(true);
    expect(logLines.some((l) => l.includes('"msg":"index sweep done"') && l.includes(`"index":"${INDEX}"`))).toBe(true);
  }, 240_000);

  it("refuses to guess when a kept manifest is unreadable, and `everything` empties the prefix", async () => {
    const prefix = indexPrefix(TENANT, INDEX);
    await store.put(manifestKey(TENANT, INDEX, 7), new TextEncoder().encode("{not json"));
    const before = await store.list(prefix);
    await expect(runSweep({ tenant: TENANT, index: INDEX, everything: false, keepVersions: [6, 7], walUpToSeq: 0, uploads: [] }, { store })).rejects.toThrow(SweepRefusedError);
    expect(await store.list(prefix)).toEqual(before);

    await store.put(`${uploadPrefix(TENANT, "su2")}a.jsonl`, new TextEncoder().encode("{}\n"));
    const neighbour = `${indexPrefix(TENANT, `${INDEX}-2`)}wal/000000000001.hwal`; // "swept-2" shares a name prefix
    await store.put(neighbour, new Uint8Array(4));
    const answer = await runSweep({ tenant: TENANT, index: INDEX, everything: true, keepVersions: [], walUpToSeq: 0, uploads: ["su2"] }, { store });
    expect(answer).toMatchObject({ deletedObjects: before.length + 1, keptObjects: 0 });
    expect(await store.list(prefix)).toEqual([]);
    expect(await store.list(uploadPrefix(TENANT, "su2"))).toEqual([]);
    // Other indexes are untouched.
    expect(await store.head(neighbour)).toBeDefined();
  }, 60_000);
});

describe("worker memory", () => {
  const EXACT: SearchParams = { k: 5, mode: "exact", variant: "published", entryPoints: 8, ncandidates: 8, maxIter: 4, earlyStop: true, seed: 0 };
  let embeddings: Float32Array;
  const ids = Array.from({ length: 40 }, (_, i) => `m-${i}`);

  beforeAll(async () => {
    embeddings = await runtime.embedDocuments(ids.map((id, i) => textOf(id, i)), { maxLength: DOC_MAX_LENGTH });
    for (const [index, versions] of [["mem", [1, 2, 3, 4, 5]], ["lru-a", [1]], ["lru-b", [1]]] as const) {
      for (const version of versions) {
        await writeFixtureIndex({ store, prefix: versionPrefix(TENANT, index, version), index, version, modelId, embeddings, dim, ids, shardSizes: [20, 20] });
      }
    }
  }, 120_000);

  const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);

  it("after searches of five versions of an index, only the newest stays loaded (the /metrics gauges)", async () => {
    const backend = await createIndexBackend({ runtime, store, cacheDir: join(root, "cache-mem"), cacheBudgetBytes: 1 << 30, preload: [], logger });
    const service = createService({
      runtime,
      backend,
      logger,
      settings: { signingSecrets: ["s"], insecureDev: false, queueMax: 8, concurrency: 4, batchMax: 4, batchWaitMs: 1, requestTimeoutMs: 30_000, maxBodyBytes: 1 << 20, maxPendingBodyBytes: 8 << 20, maxAnswerBytes: 4 << 20 },
    });
    const metrics = async () => (await service.app.request("/metrics")).text();
    const [qnet] = await runtime.encodeQueries(["graph search"]);
    try {
      let oneVersionBytes = 0;
      for (const version of [1, 2, 3, 4, 5]) {
        const prepared = await runtime.prepareQNet(qnet!);
        try {
          const result = await backend.search({ tenant: TENANT, index: "mem", version, params: EXACT, fields: [], qnet: prepared, signal: new AbortController().signal });
          expect(result.hits).toHaveLength(5);
        } finally {
          await prepared.release();
        }
        const text = await metrics();
        expect(gauge(text, "hypencoder_loaded_versions")).toBe(1);
        oneVersionBytes ||= gauge(text, "hypencoder_loaded_bytes");
        expect(gauge(text, "hypencoder_loaded_bytes")).toBe(oneVersionBytes);
      }
      expect(oneVersionBytes).toBeGreaterThan(0);

      // An older version in use stays loaded until its use ends, then goes.
      const registry = backend.registry!;
      const old = await registry.acquire({ tenant: TENANT, index: "mem", version: 4 });
      expect(old.index.manifest.indexVersion).toBe(4);
      expect(gauge(await metrics(), "hypencoder_loaded_versions")).toBe(2);
      const newest = await registry.acquire({ tenant: TENANT, index: "mem", version: 5 });
      old.release();
      old.release(); // idempotent
      expect(gauge(await metrics(), "hypencoder_loaded_versions")).toBe(1);
      // unload() waits for in-flight uses too.
      expect(await registry.unload({ tenant: TENANT, index: "mem", version: 5 })).toBe(true);
      expect(registry.memoryStats().loadedVersions).toBe(1);
      newest.release();
      expect(registry.memoryStats()).toMatchObject({ loadedVersions: 0, loadedBytes: 0 });
      // Other contributors (the WAL cache) add to the loaded bytes.
      const remove = registry.addMemoryContributor("wal-cache", { bytes: () => 1234 });
      expect(gauge(await metrics(), "hypencoder_loaded_bytes")).toBe(1234);
      remove();
    } finally {
      await backend.close();
    }
  }, 120_000);

  it("evicts idle versions least recently used first under a tiny budget, never one in use", async () => {
    const open = async (registry: IndexRegistry, index: string) => {
      const lease = await registry.acquire({ tenant: TENANT, index, version: 1 });
      await Promise.all(lease.index.manifest.shards.map((s) => lease.index.shard(s.id)));
      return lease;
    };
    const cacheOf = (name: string) => new ShardCache({ dir: join(root, name), budgetBytes: 1 << 30, store });
    const measure = new IndexRegistry({ store, cache: cacheOf("cache-measure"), modelId });
    (await open(measure, "lru-a")).release();
    const one = measure.memoryStats().loadedBytes;
    await measure.close();

    const registry = new IndexRegistry({ store, cache: cacheOf("cache-lru"), modelId, memoryBudgetBytes: Math.floor(one * 1.5), logger });
    const loaded = () => registry.metrics().indexes_loaded;
    (await open(registry, "lru-a")).release();
    expect(loaded()).toBe(1);
    (await open(registry, "lru-b")).release();
    // Two versions are over the budget: the least recently used (lru-a) went.
    expect(loaded()).toBe(1);
    expect(registry.memoryStats().loadedBytes).toBe(one);
    const a = await open(registry, "lru-a"); // reloaded: over the budget while both are needed
    expect(loaded()).toBe(2);
    const b = await registry.acquire({ tenant: TENANT, index: "lru-b", version: 1 });
    expect(loaded()).toBe(2); // both in use: nothing is evicted
    b.release(); // lru-a is still in use: lru-b, idle now, is the one that goes
    expect(loaded()).toBe(1);
    const again = await registry.acquire({ tenant: TENANT, index: "lru-a", version: 1 });
    expect(again.index).toBe(a.index);
    again.release();
    a.release();
    expect(loaded()).toBe(1); // alone it fits
    expect(registry.metrics().memory_evictions).toBe(2);
    await registry.close();
  }, 60_000);
});

describe("lifecycle routes", () => {
  it("POST /v1/compactions answers a BuildStatus polled through /v1/builds, POST /v1/sweep a SweepAnswer; signed and tenant-checked", async () => {
    const SECRET = "lifecycle-secret";
    const backend = await createIndexBackend({ runtime, store, cacheDir: join(root, "cache-routes"), cacheBudgetBytes: 1 << 30, preload: [], logger });
    const service = createService({
      runtime,
      backend,
      logger,
      settings: { signingSecrets: [SECRET], insecureDev: false, queueMax: 8, concurrency: 4, batchMax: 4, batchWaitMs: 1, requestTimeoutMs: 30_000, maxBodyBytes: 1 << 20, maxPendingBodyBytes: 8 << 20, maxAnswerBytes: 4 << 20 },
    });
    const call = async (method: string, path: string, body: unknown, tenant = TENANT, secret = SECRET) => {
      const bytes = body === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(body));
      const headers = await signRequest({ secret, method, path, tenant, body: bytes, host: "localhost" });
      return service.app.request(`http://localhost${path}`, { method, headers: { ...headers, "content-type": "application/json" }, ...(method === "POST" ? { body: bytes } : {}) });
    };
    try {
      await writeWal("routed", 1, [{ id: "r1", text: textOf("r", 1) }]);
      const accepted = await call("POST", "/v1/compactions", compaction("routed", 0, 1, 1));
      expect(accepted.status).toBe(202);
      const status = (await accepted.json()) as BuildStatus;
      expect(status).toMatchObject({ state: "queued", tenant: TENANT, index: "routed", version: 1 });
      let polled: BuildStatus = status;
      for (let i = 0; i < 200 && polled.state !== "succeeded" && polled.state !== "failed"; i++) {
        await new Promise((r) => setTimeout(r, 50));
        polled = (await (await call("GET", `/v1/builds/${status.jobId}`, undefined)).json()) as BuildStatus;
      }
      expect(polled.state).toBe("succeeded");
      expect((await call("GET", `/v1/builds/${status.jobId}`, undefined, "other")).status).toBe(404);
      expect((await call("POST", "/v1/compactions", compaction("routed", 0, 1, 1), "other")).status).toBe(403);
      expect((await call("POST", "/v1/compactions", compaction("routed", 0, 1, 1), TENANT, "wrong")).status).toBe(401);
      expect((await call("POST", "/v1/compactions", { ...compaction("routed", 2, 1, 1) })).status).toBe(400);

      const swept = await call("POST", "/v1/sweep", { tenant: TENANT, index: "routed", keepVersions: [1], walUpToSeq: 1 });
      expect(swept.status).toBe(200);
      expect(await swept.json()).toMatchObject({ deletedObjects: 1, keptObjects: 2 });
      expect((await call("POST", "/v1/sweep", { tenant: TENANT, index: "routed", everything: true, extra: 1 })).status).toBe(400);

      // A compaction holds its base while it runs; a base loaded only for it is unloaded afterwards.
      await writeWal("routed", 2, [{ id: "r2", text: textOf("r", 2) }]);
      const second = (await (await call("POST", "/v1/compactions", compaction("routed", 1, 2, 2))).json()) as BuildStatus;
      polled = second;
      for (let i = 0; i < 200 && polled.state !== "succeeded" && polled.state !== "failed"; i++) {
        await new Promise((r) => setTimeout(r, 50));
        polled = (await (await call("GET", `/v1/builds/${second.jobId}`, undefined)).json()) as BuildStatus;
      }
      expect(polled.state).toBe("succeeded");
      expect(backend.registry!.has({ tenant: TENANT, index: "routed", version: 1 })).toBe(false);
      expect(backend.memory!().loadedVersions).toBe(0);
      const unsigned = await service.app.request("http://localhost/v1/sweep", { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
      expect(unsigned.status).toBe(401);
    } finally {
      await backend.close();
    }
  }, 60_000);
});
