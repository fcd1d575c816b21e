/**
 * The living-index read path over a LocalStore, with a linear stand-in for the q-net (as
 * shard-search.test.ts): a format 2 version (segments by reference, deletion bitmaps) plus a WAL
 * tail, searched, looked up by id and counted. Exact mode must equal brute force over exactly the
 * live documents. The ONNX path, S3 and the HTTP routes are covered in test/living-index.test.ts.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SearchParams } from "../../../../shared/api/worker-api.ts";
import { indexPrefix, versionPrefix } from "../../../../shared/index/keys.ts";
import type { IndexManifest } from "../../../../shared/index/manifest.ts";
import { float32ArrayToHalf, halfToFloat32Array } from "../../../../shared/qnet/half.ts";
import { writeFixtureIndex } from "../../../../test/support/index-fixture.ts";
import { writeFormat2Version, writeWalFixture } from "../../../../test/support/living-fixture.ts";
import { seededRandom } from "../../search/random.ts";
import { LocalStore } from "../../store/local-store.ts";
import type { ShardProgress } from "../index-backend.ts";
import { IndexRegistry, LoadedIndex } from "../index-registry.ts";
import { ModelMismatchError, SearchRequestError } from "../search-errors.ts";
import { ShardCache } from "../shard-cache.ts";
import { searchIndex } from "../shard-search.ts";
import { WalCache } from "../tail/wal-cache.ts";
import { lookupDocument } from "./document-lookup.ts";
import { DocumentNotFoundError } from "./errors.ts";
import { indexState } from "./index-state.ts";

const MODEL = "a".repeat(64);
const DIM = 8;
const N = 60;
const rand = seededRandom(11);
const EMBEDDINGS = Float32Array.from({ length: N * DIM }, () => rand() * 2 - 1);
const IDS = Array.from({ length: N }, (_, i) => `doc-${i}`);
const W = Float64Array.from({ length: DIM }, () => rand() * 2 - 1);
/** The direction the linear q-net likes best: a document along it outscores every random one. */
const BEST = Array.from(W, (w) => w * 10);
const EXACT: SearchParams = { k: 100, mode: "exact", variant: "published", entryPoints: 16, ncandidates: 8, maxIter: 16, earlyStop: true, seed: 0 };

function dot(x: ArrayLike<number>, at = 0): number {
  let s = 0;
  for (let d = 0; d < DIM; d++) s += W[d]! * x[at + d]!;
  return s;
}

function linearQNet() {
  return {
    async score(rows: Float32Array | Uint16Array): Promise<Float32Array> {
      const x = rows instanceof Uint16Array ? halfToFloat32Array(rows) : rows;
      return Float32Array.from({ length: x.length / DIM }, (_, r) => dot(x, r * DIM));
    },
  };
}

const HALF = halfToFloat32Array(float32ArrayToHalf(EMBEDDINGS));

let root: string;
let store: LocalStore;
let registry: IndexRegistry;
let walCache: WalCache;
let v1: IndexManifest;

/**
 * Version 1: doc-0..59 in segments s0 (0-29) and s1 (30-59). Version 2: the same segments, format 2,
 * doc-3 and doc-35 deleted by bitmaps, coveredSeq 2. The WAL after it:
 *   3: upsert new-1 (the best document there is) and doc-10 (replaced: second best, new text)
 *   4: a gap (sealed or burned)
 *   5: delete new-1 and doc-20
 *   6: upsert new-1 again
 */
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "living-read-test-"));
  store = new LocalStore(join(root, "store"));
  v1 = await writeFixtureIndex({
    store,
    prefix: versionPrefix("acme", "docs", 1),
    modelId: MODEL,
    embeddings: EMBEDDINGS,
    dim: DIM,
    ids: IDS,
    fields: IDS.map((id, i) => ({ text: `text of ${id}`, n: i })),
    shardSizes: [30, 30],
  });
  await writeFormat2Version(store, v1, { from: 1, to: 2, coveredSeq: 2, deletedRows: { s0: [3], s1: [5] } });
  const wal = { store, modelId: MODEL, dim: DIM };
  await writeWalFixture({ ...wal, seq: 1, upsert: [{ id: "old", fields: { text: "before version 2" }, embedding: BEST }] });
  await writeWalFixture({
    ...wal,
    seq: 3,
    upsert: [
      { id: "new-1", fields: { text: "brand new", tag: "x" }, embedding: BEST },
      { id: "doc-10", fields: { text: "replaced" }, embedding: BEST.map((v) => v * 0.9) },
    ],
  });
  await writeWalFixture({ ...wal, seq: 5, delete: ["new-1", "doc-20"] });
  await writeWalFixture({ ...wal, seq: 6, upsert: [{ id: "new-1", fields: { text: "again" }, embedding: BEST.map((v) => v * 0.8) }] });
  registry = new IndexRegistry({ store, cache: new ShardCache({ dir: join(root, "cache"), budgetBytes: 1 << 30, store }), modelId: MODEL });
  walCache = new WalCache({ store, modelId: MODEL, dim: DIM });
});

afterAll(async () => {
  await registry.close();
  await rm(root, { recursive: true, force: true });
});

/** The live documents of version 2 + tail (2, toSeq], by hand: id → score and text. */
function liveAt(toSeq: number): Map<string, { score: number; text: string }> {
  const live = new Map<string, { score: number; text: string }>();
  IDS.forEach((id, i) => live.set(id, { score: dot(HALF, i * DIM), text: `text of ${id}` }));
  live.delete("doc-3");
  live.delete("doc-35");
  if (toSeq >= 3) {
    live.delete("doc-10");
    live.set("new-1", { score: dot(BEST), text: "brand new" });
    live.set("doc-10", { score: dot(BEST.map((v) => v * 0.9)), text: "replaced" });
  }
  if (toSeq >= 5) {
    live.delete("new-1");
    live.delete("doc-20");
  }
  if (toSeq >= 6) live.set("new-1", { score: dot(BEST.map((v) => v * 0.8)), text: "again" });
  return live;
}

async function v2WithTail(toSeq: number) {
  const index = await registry.get({ tenant: "acme", index: "docs", version: 2 });
  const tail = await walCache.view("acme", "docs", { fromSeq: index.coveredSeq, toSeq });
  return { index, tail };
}

describe("format 2 versions", () => {
  it("resolve segment keys against the index prefix and load deletion bitmaps, verified", async () => {
    const index = await registry.get({ tenant: "acme", index: "docs", version: 2 });
    expect(index.keyBase).toBe(indexPrefix("acme", "docs"));
    expect(index.coveredSeq).toBe(2);
    expect((await index.deletionBitmap("s0"))?.has(3)).toBe(true);
    expect((await index.deletionBitmap("s1"))?.count).toBe(1);
    // Version 1 has none; its keys stay relative to its own folder.
    const one = await registry.get({ tenant: "acme", index: "docs", version: 1 });
    expect(one.keyBase).toBe(versionPrefix("acme", "docs", 1));
    expect(await one.deletionBitmap("s0")).toBeUndefined();
  });

  it("never return a row its deletion bitmap marks; exact = brute force over the live rows", async () => {
    const { index } = await v2WithTail(2);
    const result = await searchIndex(index, { params: EXACT, qnet: linearQNet() });
    const expected = [...liveAt(2)].sort((a, b) => b[1].score - a[1].score).map(([id]) => id);
    expect(result.hits.map((h) => h.id)).toEqual(expected);
    expect(result.docsScored).toBe(N - 2);
  });

  it("refuse to search a segment whose deletion bitmap is corrupt (it would return deleted rows)", async () => {
    const dir = join(root, "corrupt");
    const own = new LocalStore(join(dir, "store"));
    const m1 = await writeFixtureIndex({ store: own, prefix: versionPrefix("acme", "docs", 1), modelId: MODEL, embeddings: EMBEDDINGS, dim: DIM, ids: IDS, shardSizes: [30, 30] });
    const m2 = await writeFormat2Version(own, m1, { from: 1, to: 2, coveredSeq: 0, deletedRows: { s1: [0, 1] } });
    const key = indexPrefix("acme", "docs") + m2.shards[1]!.deletes!.key;
    const bytes = await own.get(key);
    bytes[bytes.length - 1]! ^= 0x01;
    await own.put(key, bytes);
    const reg = new IndexRegistry({ store: own, cache: new ShardCache({ dir: join(dir, "cache"), budgetBytes: 1 << 30, store: own }), modelId: MODEL });
    const errors: string[] = [];
    const result = await searchIndex(await reg.get({ tenant: "acme", index: "docs", version: 2 }), {
      params: EXACT,
      qnet: linearQNet(),
      onShardError: (s, e) => errors.push(`${s}: ${(e as Error).message}`),
    });
    expect(result.missingShards).toEqual(["s1"]);
    expect(result.hits).toHaveLength(30);
    expect(errors[0]).toMatch(/s1: deletion bitmap .*sha256 mismatch/);
    await reg.close();
  });
});

describe("search with a tail", () => {
  it("finds an upserted document, returns only the new version of a replaced one, with the WAL's fields", async () => {
    const { index, tail } = await v2WithTail(3);
    const result = await searchIndex(index, { tail, params: { ...EXACT, k: 3 }, fields: ["text", "tag"], qnet: linearQNet() });
    expect(result.hits.map((h) => h.id)).toEqual(["new-1", "doc-10", expect.stringMatching(/^doc-/)]);
    expect(result.hits[0]!.fields).toEqual({ text: "brand new", tag: "x" });
    expect(result.hits[1]!.fields).toEqual({ text: "replaced" });
    // A field a document lacks is absent, not an error, once a tail is in play.
    expect(result.hits[2]!.fields).toEqual({ text: expect.stringMatching(/^text of doc-/) });
    const all = await searchIndex(index, { tail, params: EXACT, qnet: linearQNet() });
    expect(all.hits.filter((h) => h.id === "doc-10")).toHaveLength(1);
    expect(all.shardsSearched).toBe(3);
  });

  it("hides a deleted document, and shows it again once re-upserted", async () => {
    const deleted = await searchIndex((await v2WithTail(5)).index, { tail: (await v2WithTail(5)).tail, params: EXACT, qnet: linearQNet() });
    expect(deleted.hits.map((h) => h.id)).not.toContain("new-1");
    expect(deleted.hits.map((h) => h.id)).not.toContain("doc-20");
    const { index, tail } = await v2WithTail(6);
    const again = await searchIndex(index, { tail, params: { ...EXACT, k: 2 }, fields: ["text"], qnet: linearQNet() });
    expect(again.hits.map((h) => [h.id, h.fields?.text])).toEqual([
      ["doc-10", "replaced"],
      ["new-1", "again"],
    ]);
  });

  it("exact mode equals brute force over exactly the live documents, at every head", async () => {
    for (const toSeq of [2, 3, 4, 5, 6]) {
      const { index, tail } = await v2WithTail(toSeq);
      const result = await searchIndex(index, { tail, params: EXACT, fields: ["text"], qnet: linearQNet() });
      const live = liveAt(toSeq);
      const expected = [...live].sort((a, b) => b[1].score - a[1].score);
      expect(result.hits.map((h) => h.id), `toSeq ${toSeq}`).toEqual(expected.map(([id]) => id));
      result.hits.forEach((h, i) => {
        expect(h.score).toBeCloseTo(expected[i]![1].score, 5);
        expect(h.fields?.text).toBe(expected[i]![1].text);
      });
      expect(result.docsScored).toBe(live.size);
    }
  });

  it("approx mode walks through dead rows but never returns them", async () => {
    const { index, tail } = await v2WithTail(6);
    const live = liveAt(6);
    for (const entryPoints of [1, 4, N]) {
      const result = await searchIndex(index, { tail, params: { ...EXACT, mode: "approx", k: 10, entryPoints, maxIter: 50 }, qnet: linearQNet() });
      for (const h of result.hits) expect(live.has(h.id), h.id).toBe(true);
      expect(new Set(result.hits.map((h) => h.id)).size).toBe(result.hits.length);
    }
    const everything = await searchIndex(index, { tail, params: { ...EXACT, mode: "approx", k: 100, entryPoints: N, maxIter: 100 }, qnet: linearQNet() });
    const exact = await searchIndex(index, { tail, params: EXACT, qnet: linearQNet() });
    expect(everything.hits).toEqual(exact.hits);
  });

  it("scores the tail only where the request names its shard, but masks on every shard", async () => {
    const { index, tail } = await v2WithTail(3);
    const progress: ShardProgress[] = [];
    const onlyTail = await searchIndex(index, { tail, shards: ["tail"], params: EXACT, qnet: linearQNet(), onProgress: (p) => progress.push(p) });
    expect(onlyTail.hits.map((h) => h.id)).toEqual(["new-1", "doc-10"]);
    expect(progress).toEqual([{ shard: "tail", iteration: 1, hits: onlyTail.hits }]);
    const s0 = await searchIndex(index, { tail, shards: ["s0"], params: EXACT, qnet: linearQNet() });
    expect(s0.hits.map((h) => h.id)).not.toContain("doc-10");
    expect(s0.hits.map((h) => h.id)).not.toContain("new-1");
    expect(s0.hits).toHaveLength(28);
    await expect(searchIndex(index, { tail, shards: ["s9", "tail"], params: EXACT, qnet: linearQNet() })).rejects.toThrow(SearchRequestError);
  });

  it("keeps today's 400 for an unknown field only for a format 1 version searched without a tail", async () => {
    const one = await registry.get({ tenant: "acme", index: "docs", version: 1 });
    await expect(searchIndex(one, { params: EXACT, fields: ["tag"], qnet: linearQNet() })).rejects.toThrow(/unknown field "tag"/);
    const tail = await walCache.view("acme", "docs", { fromSeq: 0, toSeq: 3 });
    // Seq 1 ("old") is in version 1's tail too; it has no tag, so its hit has no tag.
    const withTail = await searchIndex(one, { tail, params: { ...EXACT, k: 2 }, fields: ["tag"], qnet: linearQNet() });
    expect(withTail.hits.map((h) => [h.id, h.fields])).toEqual([
      ["old", {}],
      ["new-1", { tag: "x" }],
    ]);
  });

  it("searches a version 0 index (never built) from its tail alone", async () => {
    const wal = { store, modelId: MODEL, dim: DIM, index: "fresh" };
    await writeWalFixture({ ...wal, seq: 1, upsert: [{ id: "a", fields: { text: "alpha" }, embedding: BEST }, { id: "b", fields: { text: "beta" }, embedding: BEST.map((v) => -v) }] });
    await writeWalFixture({ ...wal, seq: 2, delete: ["a", "never-there"] });
    const empty = LoadedIndex.empty({ tenant: "acme", index: "fresh" }, { id: MODEL, embeddingDim: DIM }, registry.cache);
    expect(empty.coveredSeq).toBe(0);
    expect((await searchIndex(empty, { params: EXACT, qnet: linearQNet() })).hits).toEqual([]);
    const first = await searchIndex(empty, { tail: await walCache.view("acme", "fresh", { fromSeq: 0, toSeq: 1 }), params: EXACT, fields: ["text"], qnet: linearQNet() });
    expect(first.hits.map((h) => [h.id, h.fields?.text])).toEqual([
      ["a", "alpha"],
      ["b", "beta"],
    ]);
    const tail = await walCache.view("acme", "fresh", { fromSeq: 0, toSeq: 2 });
    const second = await searchIndex(empty, { tail, params: { ...EXACT, mode: "approx" }, qnet: linearQNet() });
    expect(second.hits.map((h) => h.id)).toEqual(["b"]);
    expect(await indexState(empty, tail)).toEqual({ docCount: 1, pendingDocs: 1, segments: [], coveredSeq: 0, tailBatches: 2 });
    await expect(lookupDocument(empty, tail, "a")).rejects.toThrow(DocumentNotFoundError);
    expect(await lookupDocument(empty, tail, "b")).toEqual({ id: "b", fields: { text: "beta" } });
  });
});

describe("documents by id and index state", () => {
  it("answer the newest live version of a document: the tail first, then the segments", async () => {
    const { index, tail } = await v2WithTail(5);
    expect(await lookupDocument(index, tail, "doc-10")).toEqual({ id: "doc-10", fields: { text: "replaced" } });
    expect(await lookupDocument(index, tail, "doc-4")).toEqual({ id: "doc-4", fields: { text: "text of doc-4", n: 4 } });
    for (const gone of ["doc-20", "new-1", "doc-3", "doc-35", "never-there"]) {
      await expect(lookupDocument(index, tail, gone), gone).rejects.toThrow(DocumentNotFoundError);
    }
    expect(await lookupDocument(index, undefined, "doc-20")).toMatchObject({ id: "doc-20" });
  });

  it("count live documents per segment and in the tail", async () => {
    const { index, tail } = await v2WithTail(6);
    expect(await indexState(index, tail)).toEqual({
      docCount: liveAt(6).size,
      pendingDocs: 2,
      segments: [
        { id: "s0", docCount: 30, deletedDocs: 3 },
        { id: "s1", docCount: 30, deletedDocs: 1 },
      ],
      coveredSeq: 2,
      tailBatches: 3,
    });
    expect(await indexState(index, undefined)).toMatchObject({ docCount: N - 2, pendingDocs: 0, tailBatches: 0 });
  });
});

describe("WalCache", () => {
  it("fetches only seqs it does not know yet, remembers gaps, and shares views", async () => {
    const cache = new WalCache({ store, modelId: MODEL, dim: DIM });
    const a = await cache.view("acme", "docs", { fromSeq: 2, toSeq: 3 });
    expect(cache.stats()).toMatchObject({ indexes: 1, batches: 1, gaps: 0, fetchedBatches: 1 });
    expect(await cache.view("acme", "docs", { fromSeq: 2, toSeq: 3 })).toBe(a);
    const b = await cache.view("acme", "docs", { fromSeq: 2, toSeq: 6 });
    expect(cache.stats()).toMatchObject({ batches: 3, gaps: 1, fetchedBatches: 3 });
    expect(b.ids).toEqual(["doc-10", "new-1"]);
    expect([...b.touched].sort()).toEqual(["doc-10", "doc-20", "new-1"]);
    expect(b.batches).toBe(3);
    expect(b.lastSeq).toBe(6);
    // A gap stays a gap for this cache (a seq at or below a committed head never appears later).
    await cache.view("acme", "docs", { fromSeq: 2, toSeq: 5 });
    expect(cache.stats().fetchedBatches).toBe(3);
    expect(cache.bytes()).toBeGreaterThan(b.embeddings.byteLength);
  });

  it("lends what it holds to other readers (compaction): batches, known gaps, and nothing it never read", async () => {
    const cache = new WalCache({ store, modelId: MODEL, dim: DIM });
    expect(cache.known("acme", "docs")(3)).toBeUndefined();
    await cache.view("acme", "docs", { fromSeq: 2, toSeq: 6 });
    const known = cache.known("acme", "docs");
    const held = [3, 4, 5, 6].map(known);
    expect(held.filter((b) => b === null)).toHaveLength(1);
    expect(held.filter((b) => b !== null).map((b) => b!.seq)).toEqual([3, 4, 5, 6].filter((_, i) => held[i] !== null));
    expect(known(7)).toBeUndefined();
    expect(cache.known("acme", "other")(3)).toBeUndefined();
  });

  it("drops batches a newer version covers once older versions are no longer searched", async () => {
    let now = 0;
    const cache = new WalCache({ store, modelId: MODEL, dim: DIM, now: () => now });
    await cache.view("acme", "docs", { fromSeq: 2, toSeq: 6 });
    await cache.view("acme", "docs", { fromSeq: 5, toSeq: 6 });
    expect(cache.stats().batches).toBe(3); // version 2's searches may still come
    now += 61_000;
    await cache.view("acme", "docs", { fromSeq: 5, toSeq: 6 });
    expect(cache.stats()).toMatchObject({ batches: 1, fetchedBatches: 3 });
  });

  it("evicts the least recently used index's tail over its byte budget", async () => {
    const cache = new WalCache({ store, modelId: MODEL, dim: DIM, budgetBytes: 1 });
    await cache.view("acme", "docs", { fromSeq: 2, toSeq: 6 });
    await cache.view("acme", "fresh", { fromSeq: 0, toSeq: 2 });
    expect(cache.stats()).toMatchObject({ indexes: 1, evictions: 1 });
  });

  it("refuses batches embedded by another model", async () => {
    const cache = new WalCache({ store, modelId: "b".repeat(64), dim: DIM });
    await expect(cache.view("acme", "docs", { fromSeq: 2, toSeq: 3 })).rejects.toThrow(ModelMismatchError);
    expect(cache.stats().batches).toBe(0);
  });
});
