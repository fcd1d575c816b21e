/**
 * The read path (IndexRegistry → ShardCache → searchIndex / embeddingsById) over a LocalStore, with
 * a linear stand-in for the q-net so it runs without onnxruntime. The ONNX path and S3 are covered
 * end to end in test/index-search.test.ts.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IndexFormatError } from "../../../shared/index/errors.ts";
import { versionPrefix } from "../../../shared/index/keys.ts";
import { float32ArrayToHalf, halfToFloat32Array } from "../../../shared/qnet/half.ts";
import type { SearchParams } from "../../../shared/api/worker-api.ts";
import { seededRandom } from "../search/random.ts";
import { LocalStore } from "../store/local-store.ts";
import { embeddingsById } from "./embeddings-by-id.ts";
import { writeFixtureIndex } from "../../../test/support/index-fixture.ts";
import type { ShardProgress } from "./index-backend.ts";
import { IndexRegistry } from "./index-registry.ts";
import { IndexNotFoundError, IndexUnavailableError, ModelMismatchError, SearchRequestError } from "./search-errors.ts";
import { ShardCache } from "./shard-cache.ts";
import { searchIndex, walkFor } from "./shard-search.ts";

const MODEL = "a".repeat(64);
const DIM = 8;
const N = 120;
const rand = seededRandom(7);
const EMBEDDINGS = Float32Array.from({ length: N * DIM }, () => rand() * 2 - 1);
const IDS = Array.from({ length: N }, (_, i) => `doc-${i}`);
const FIELDS = IDS.map((id, i) => ({ text: `text of ${id}`, n: i }));
const W = Float64Array.from({ length: DIM }, () => rand() * 2 - 1);

/** score(x) = w·x, on the float16-rounded values when the rows are float16 (as the ONNX graph). */
function linearQNet() {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    async score(rows: Float32Array | Uint16Array): Promise<Float32Array> {
      calls++;
      const x = rows instanceof Uint16Array ? halfToFloat32Array(rows) : rows;
      const out = new Float32Array(x.length / DIM);
      for (let r = 0; r < out.length; r++) {
        let s = 0;
        for (let d = 0; d < DIM; d++) s += W[d]! * x[r * DIM + d]!;
        out[r] = s;
      }
      return out;
    },
  };
}

/** The stored (float16-rounded) embeddings as float32. */
function roundedToHalf(): Float32Array {
  return halfToFloat32Array(float32ArrayToHalf(EMBEDDINGS));
}

/** Every document's score, best first: what exact search must return. */
async function bruteForce(k: number): Promise<{ id: string; score: number }[]> {
  const scores = await linearQNet().score(roundedToHalf());
  return IDS.map((id, i) => ({ id, score: scores[i]!, i }))
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .slice(0, k)
    .map(({ id, score }) => ({ id, score }));
}

const PARAMS: SearchParams = { k: 10, mode: "exact", variant: "published", entryPoints: 16, ncandidates: 8, maxIter: 16, earlyStop: true, seed: 0 };

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "shard-search-test-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh store with acme/docs@1 in `shardSizes` shards, and a registry over it. */
async function setup(shardSizes: number[], extra: { modelId?: string; budget?: number } = {}) {
  const dir = join(root, `case-${++n}`);
  const store = new LocalStore(join(dir, "store"));
  const manifest = await writeFixtureIndex({
    store,
    prefix: versionPrefix("acme", "docs", 1),
    modelId: MODEL,
    embeddings: EMBEDDINGS,
    dim: DIM,
    ids: IDS,
    fields: FIELDS,
    shardSizes,
  });
  const cache = new ShardCache({ dir: join(dir, "cache"), budgetBytes: extra.budget ?? 1 << 30, store });
  const registry = new IndexRegistry({ store, cache, modelId: extra.modelId ?? MODEL });
  return { store, cache, registry, manifest, ref: { tenant: "acme", index: "docs", version: 1 } };
}

describe("searchIndex", () => {
  it("exact mode returns the k best documents by the q-net's score, with ids and stored fields", async () => {
    const { registry, ref } = await setup([N]);
    const index = await registry.get(ref);
    const result = await searchIndex(index, { params: PARAMS, fields: ["text"], qnet: linearQNet() });
    const expected = await bruteForce(10);
    expect(result.hits.map((h) => h.id)).toEqual(expected.map((h) => h.id));
    result.hits.forEach((h, i) => expect(h.score).toBeCloseTo(expected[i]!.score, 6));
    expect(result.hits[0]!.fields).toEqual({ text: `text of ${result.hits[0]!.id}` });
    expect(result).toMatchObject({ docsScored: N, iterations: 1, shardsSearched: 1, missingShards: [] });
    await registry.close();
  });

  it("approx mode with every document as an entry point equals exact mode", async () => {
    const { registry, ref } = await setup([N]);
    const index = await registry.get(ref);
    const qnet = linearQNet();
    const exact = await searchIndex(index, { params: PARAMS, qnet });
    const approx = await searchIndex(index, { params: { ...PARAMS, mode: "approx", entryPoints: N, maxIter: 100 }, qnet });
    expect(approx.hits).toEqual(exact.hits);
    expect(approx.hits[0]).not.toHaveProperty("fields");
  });

  it("merging shards gives the same answer as one shard over the same documents", async () => {
    const one = await setup([N]);
    const three = await setup([50, 40, 30]);
    const qnet = linearQNet();
    for (const mode of ["exact", "approx"] as const) {
      const params = { ...PARAMS, mode, k: 25, entryPoints: N, maxIter: 100 };
      const a = await searchIndex(await one.registry.get(one.ref), { params, fields: ["n"], qnet });
      const progress: ShardProgress[] = [];
      const b = await searchIndex(await three.registry.get(three.ref), { params, fields: ["n"], qnet, onProgress: (p) => progress.push(p) });
      expect(b.hits).toEqual(a.hits);
      expect(b.shardsSearched).toBe(3);
      expect(b.docsScored).toBe(N);
      expect(new Set(progress.map((p) => p.shard))).toEqual(new Set(["s0", "s1", "s2"]));
      for (const p of progress) expect(p.hits.every((h) => typeof h.id === "string" && IDS.includes(h.id))).toBe(true);
    }
  });

  it("searches only the shards asked for, and refuses unknown shards and fields", async () => {
    const { registry, ref } = await setup([60, 60]);
    const index = await registry.get(ref);
    const result = await searchIndex(index, { shards: ["s1", "s1"], params: { ...PARAMS, k: 60 }, qnet: linearQNet() });
    expect(result.shardsSearched).toBe(1);
    expect(result.hits.every((h) => Number(h.id.slice(4)) >= 60)).toBe(true);
    await expect(searchIndex(index, { shards: ["s9"], params: PARAMS, qnet: linearQNet() })).rejects.toThrow(
      /unknown shard "s9" in index acme\/docs@1, which has s0, s1/,
    );
    await expect(searchIndex(index, { params: PARAMS, fields: ["title"], qnet: linearQNet() })).rejects.toThrow(SearchRequestError);
    await expect(searchIndex(index, { params: PARAMS, fields: ["title"], qnet: linearQNet() })).rejects.toThrow(/unknown field "title".*stores text, n/);
  });

  it("answers without a corrupt shard (missingShards), and fails only when every shard is bad", async () => {
    const { store, registry, ref, manifest } = await setup([60, 60]);
    const key = versionPrefix("acme", "docs", 1) + manifest.shards[1]!.key;
    const bytes = await store.get(key);
    bytes[bytes.length - 1] ^= 0xff;
    await store.put(key, bytes);
    const errors: string[] = [];
    const index = await registry.get(ref);
    const result = await searchIndex(index, { params: { ...PARAMS, k: 200 }, qnet: linearQNet(), onShardError: (s, e) => errors.push(`${s}: ${(e as Error).message}`) });
    expect(result.missingShards).toEqual(["s1"]);
    expect(result.hits).toHaveLength(60);
    expect(errors[0]).toMatch(/s1: .*sha256 mismatch/);
    expect(registry.cache.stats().verifyFailures).toBe(1);
    const all = searchIndex(index, { shards: ["s1"], params: PARAMS, qnet: linearQNet() });
    await expect(all).rejects.toThrow(IndexUnavailableError);
    await expect(all).rejects.toThrow(/none of the 1 shards searched could be loaded: .*sha256 mismatch/);
  });

  it("stops a cancelled search", async () => {
    const { registry, ref } = await setup([N]);
    const index = await registry.get(ref);
    const controller = new AbortController();
    const params = { ...PARAMS, mode: "approx" as const, entryPoints: 4, earlyStop: false, maxIter: 50 };
    const search = searchIndex(index, { params, qnet: linearQNet(), signal: controller.signal, onProgress: () => controller.abort(new Error("cancelled")) });
    await expect(search).rejects.toThrow("cancelled");
  });
});

describe("IndexRegistry", () => {
  it("treats a version without a manifest as not found, and sees it once the manifest appears", async () => {
    const { store, registry } = await setup([N]);
    const prefix = versionPrefix("acme", "docs", 2);
    await writeFixtureIndex({ store, prefix, version: 2, modelId: MODEL, embeddings: EMBEDDINGS, dim: DIM, ids: IDS, withoutManifest: true });
    await expect(registry.get({ tenant: "acme", index: "docs", version: 2 })).rejects.toThrow(IndexNotFoundError);
    await expect(registry.get({ tenant: "acme", index: "docs", version: 2 })).rejects.toThrow("index acme/docs@2 not found (no manifest.json)");
    await writeFixtureIndex({ store, prefix, version: 2, modelId: MODEL, embeddings: EMBEDDINGS, dim: DIM, ids: IDS });
    expect((await registry.get({ tenant: "acme", index: "docs", version: 2 })).manifest.indexVersion).toBe(2);
  });

  it("refuses an index built with another model", async () => {
    const { registry, ref } = await setup([N], { modelId: "b".repeat(64) });
    const load = registry.get(ref);
    await expect(load).rejects.toThrow(ModelMismatchError);
    await expect(load).rejects.toThrow(/built with model aaaaaaaaaaaa…, but the loaded model is bbbbbbbbbbbb…/);
  });

  it("refuses a manifest that describes another index", async () => {
    const { store, registry } = await setup([N]);
    await writeFixtureIndex({ store, prefix: versionPrefix("acme", "other", 1), index: "docs", modelId: MODEL, embeddings: EMBEDDINGS, dim: DIM, ids: IDS });
    await expect(registry.get({ tenant: "acme", index: "other", version: 1 })).rejects.toThrow(IndexFormatError);
  });

  it("shares one manifest read and one download per shard between concurrent first queries", async () => {
    const { registry, ref, cache } = await setup([60, 60]);
    const results = await Promise.all(
      Array.from({ length: 8 }, async () => searchIndex(await registry.get(ref), { params: PARAMS, qnet: linearQNet() })),
    );
    expect(new Set(results.map((r) => JSON.stringify(r.hits))).size).toBe(1);
    expect(cache.stats().downloads).toBe(2);
    const m = registry.metrics();
    expect(m).toMatchObject({ indexes_loaded: 1, shards_open: 2, docs_in_memory: N, cache_downloads: 2 });
    expect(m.bytes_per_doc_in_memory).toBeGreaterThan(DIM * 2);
    await registry.close();
    expect(registry.metrics()).toMatchObject({ indexes_loaded: 0, shards_open: 0 });
  });

  it("preloads versions and reports the ones it could not load", async () => {
    const { registry, ref } = await setup([60, 60]);
    const results = await registry.preload([ref, { tenant: "acme", index: "docs", version: 9 }]);
    expect(results[0]!.error).toBeUndefined();
    expect(results[1]!.error).toBeInstanceOf(IndexNotFoundError);
    expect(registry.metrics()).toMatchObject({ indexes_loaded: 1, shards_open: 2, cache_downloads: 2 });
  });
});

describe("embeddingsById", () => {
  it("returns stored rows in request order, once per id, and lists unknown ids as missing", async () => {
    const { registry, ref } = await setup([50, 70]);
    const index = await registry.get(ref);
    const got = await embeddingsById(index, ["doc-99", "nope", "doc-3", "doc-99"]);
    expect(got.ids).toEqual(["doc-99", "doc-3"]);
    expect(got.missing).toEqual(["nope"]);
    expect(got.embeddings).toBeInstanceOf(Uint16Array);
    const rows = halfToFloat32Array(got.embeddings as Uint16Array);
    const want = roundedToHalf();
    expect(Array.from(rows.subarray(0, DIM))).toEqual(Array.from(want.subarray(99 * DIM, 100 * DIM)));
    expect(Array.from(rows.subarray(DIM))).toEqual(Array.from(want.subarray(3 * DIM, 4 * DIM)));
  });
});

describe("walkFor", () => {
  const proxy: SearchParams = { k: 10, mode: "approx", variant: "proxy", earlyStop: true, seed: 0 };
  it("walks a large shard built without a proxy index the published way, and every other shard as asked", () => {
    expect(walkFor({ proxyIndex: new Uint8Array(0), docCount: 100_000 }, proxy).variant).toBe("published");
    expect(walkFor({ proxyIndex: new Uint8Array(0), docCount: 100_000 }, { ...proxy, entryPoints: 500 })).toMatchObject({ variant: "published", entryPoints: 500 });
    // Small shards are brute-forced by inner product: cheap, so they keep the proxy walk.
    expect(walkFor({ proxyIndex: new Uint8Array(0), docCount: 1000 }, proxy).variant).toBe("proxy");
    expect(walkFor({ proxyIndex: new Uint8Array(64), docCount: 100_000 }, proxy).variant).toBe("proxy");
    expect(walkFor({ proxyIndex: new Uint8Array(0), docCount: 100_000 }, { ...proxy, variant: "best-first" }).variant).toBe("best-first");
  });
});
