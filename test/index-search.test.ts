/**
 * The index read path end to end on the real model runtime (tiny checkpoint, ONNX on CPU): indexes
 * written straight from the format (encodeShard + manifest, independent of the builder) into a
 * folder and into real S3 (radosgw), searched through createIndexBackend and the `hypencoder search`
 * CLI as a child process.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { versionPrefix } from "../shared/index/keys.ts";
import { halfToFloat32Array, float32ArrayToHalf } from "../shared/qnet/half.ts";
import type { QNet } from "../shared/qnet/types.ts";
import type { SearchParams } from "../shared/api/worker-api.ts";
import { createIndexBackend, type IndexBackendImpl } from "../gpu-worker/src/index/index-backend-impl.ts";
import { writeFixtureIndex } from "./support/index-fixture.ts";
import { writeTinyCheckpoint } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { TINY_VOCAB } from "../gpu-worker/src/model/fixture/vocab.ts";
import { importCheckpoint } from "../gpu-worker/src/model/import-checkpoint.ts";
import { HypencoderRuntime } from "../gpu-worker/src/model/runtime/runtime.ts";
import { seededRandom } from "../gpu-worker/src/search/random.ts";
import type { IndexSearchInput } from "../gpu-worker/src/index/index-backend.ts";
import { IndexNotFoundError } from "../gpu-worker/src/index/search-errors.ts";
import { ApiError, toApiError } from "../gpu-worker/src/service/errors.ts";
import { createLogger } from "../gpu-worker/src/service/logger.ts";
import type { BlobStore } from "../gpu-worker/src/store/blob-store.ts";
import { LocalStore } from "../gpu-worker/src/store/local-store.ts";
import { S3Store } from "../gpu-worker/src/store/s3-store.ts";
import { freshBucket, s3TestClient, s3TestEnv } from "./support/s3.ts";

const BIN = resolve(import.meta.dirname, "../bin/hypencoder.mjs");
const execFileAsync = promisify(execFile);
const N = 90;
const K = 10;
const EXACT: SearchParams = { k: K, mode: "exact", variant: "published", entryPoints: 16, ncandidates: 8, maxIter: 16, earlyStop: true, seed: 0 };

/** The backend's failure as the service answers it: the backend throws domain errors, service/errors.ts gives statuses. */
const asAnswered = <T>(pending: Promise<T>): Promise<T> => pending.catch((error: unknown) => Promise.reject(toApiError(error).error));
const WORDS = TINY_VOCAB.filter((w) => /^[a-z]{3,}$/.test(w));
const QUERIES = [
  { id: "q1", text: "hypernetwork weights for search" },
  { id: "q2", text: "graph of documents" },
];

let root: string;
let modelDir: string;
let runtime: HypencoderRuntime;
let dim: number;
let ids: string[];
let texts: string[];
let embeddings: Float32Array;
let qnets: QNet[];
let local: LocalStore;
let backend: IndexBackendImpl;
const logger = createLogger({ level: "silent" });

/** Writes acme/docs@<version> (or a bare folder when prefix is given) from the test documents. */
function writeIndex(
  store: BlobStore,
  version: number,
  options: { shardSizes?: number[]; dtype?: "float16" | "float32"; modelId?: string; prefix?: string; entryRows?: Uint32Array[] } = {},
) {
  return writeFixtureIndex({
    store,
    prefix: options.prefix ?? versionPrefix("acme", "docs", version),
    version,
    modelId: options.modelId ?? runtime.manifest.modelId,
    embeddings,
    dim,
    ids,
    fields: texts.map((text, i) => ({ text, position: i })),
    ...(options.shardSizes ? { shardSizes: options.shardSizes } : {}),
    ...(options.entryRows ? { entryRows: options.entryRows } : {}),
    dtype: options.dtype ?? "float16",
  });
}

/** Runs a search through the backend with query q's q-net prepared on the inference thread. */
async function search(b: IndexBackendImpl, q: number, input: Partial<IndexSearchInput> & { version: number }) {
  const prepared = await runtime.prepareQNet(qnets[q]!);
  try {
    return await b.search({ tenant: "acme", index: "docs", params: EXACT, fields: [], qnet: prepared, signal: new AbortController().signal, ...input });
  } finally {
    await prepared.release();
  }
}

/** The top k by scoring every document with runtime.score (float32 rows). */
async function scoreAll(q: number, rows: Float32Array): Promise<{ id: string; score: number }[]> {
  const scores = await runtime.score(qnets[q]!, rows);
  return ids
    .map((id, i) => ({ id, score: scores[i]!, i }))
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .slice(0, K)
    .map(({ id, score }) => ({ id, score }));
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "index-search-test-"));
  await writeTinyCheckpoint(join(root, "checkpoint"));
  modelDir = join(root, "model");
  await importCheckpoint(join(root, "checkpoint"), modelDir);
  runtime = await HypencoderRuntime.load(modelDir, { device: "cpu", intraOpThreads: 2 });
  dim = runtime.manifest.embeddingDim;
  const rand = seededRandom(3);
  texts = Array.from({ length: N }, () => Array.from({ length: 4 + Math.floor(rand() * 8) }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(" "));
  ids = texts.map((_, i) => `doc-${i}`);
  embeddings = await runtime.embedDocuments(texts);
  qnets = await runtime.encodeQueries(QUERIES.map((q) => q.text));

  local = new LocalStore(join(root, "store"));
  await writeIndex(local, 1, { dtype: "float32" }); // one float32 shard
  await writeIndex(local, 2, { shardSizes: [40, 30, 20] }); // three float16 shards
  await writeIndex(local, 3); // the same float16 documents in one shard
  await writeIndex(local, 9, { shardSizes: [50, 40], entryRows: [Uint32Array.of(17, 3), Uint32Array.of(25)] });
  backend = await createIndexBackend({
    runtime,
    store: local,
    cacheDir: join(root, "cache"),
    cacheBudgetBytes: 1 << 30,
    preload: [{ tenant: "acme", index: "docs", version: 1 }],
    logger,
  });
}, 120_000);

afterAll(async () => {
  await backend?.close();
  await runtime?.close();
  await rm(root, { recursive: true, force: true });
});

describe("index backend on the tiny model", () => {
  it("preloads, then searches: ids, scores and stored fields round-trip", async () => {
    expect(backend.metrics()).toMatchObject({ indexes_loaded: 1, shards_open: 1, cache_downloads: 1 });
    const result = await search(backend, 0, { version: 1, fields: ["text"] });
    expect(result).toMatchObject({ docsScored: N, shardsSearched: 1, missingShards: [] });
    expect(result.hits).toHaveLength(K);
    for (const hit of result.hits) expect(hit.fields).toEqual({ text: texts[ids.indexOf(hit.id)] });
  });

  it("scores a loaded shard by row id in the inference thread, which holds its embeddings until the version is unloaded", async () => {
    const before = await runtime.threadStats();
    const other = await createIndexBackend({ runtime, store: local, cacheDir: join(root, "cache-shared"), cacheBudgetBytes: 1 << 30, preload: [], logger });
    try {
      const graph = { ...EXACT, mode: "approx" as const };
      const first = await search(other, 0, { version: 2, params: graph });
      // Three shards, each posted once, however many searches.
      expect((await runtime.threadStats()).embeddings).toBe(before.embeddings + 3);
      expect(await search(other, 0, { version: 2, params: graph })).toEqual(first);
      await search(other, 1, { version: 2 });
      expect(await runtime.threadStats()).toEqual({ qnets: before.qnets, embeddings: before.embeddings + 3 });
    } finally {
      await other.close();
    }
    await expect.poll(() => runtime.threadStats()).toEqual(before);
  });

  it("lets go of a shard's embeddings in the inference thread when its version is evicted or superseded", async () => {
    const before = await runtime.threadStats();
    const tight = await createIndexBackend({ runtime, store: local, cacheDir: join(root, "cache-evict"), cacheBudgetBytes: 1 << 30, memoryBudgetBytes: 1, preload: [], logger });
    const roomy = await createIndexBackend({ runtime, store: local, cacheDir: join(root, "cache-supersede"), cacheBudgetBytes: 1 << 30, preload: [], logger });
    try {
      // Over the memory budget: the version is evicted as soon as its search ends.
      await search(tight, 0, { version: 2 });
      await expect.poll(() => runtime.threadStats()).toEqual(before);
      // A newer version of the index supersedes the older one once its uses end.
      await search(roomy, 0, { version: 2 });
      expect((await runtime.threadStats()).embeddings).toBe(before.embeddings + 3);
      await search(roomy, 0, { version: 3 });
      await expect.poll(() => runtime.threadStats()).toEqual({ qnets: before.qnets, embeddings: before.embeddings + 1 });
    } finally {
      await tight.close();
      await roomy.close();
    }
    await expect.poll(() => runtime.threadStats()).toEqual(before);
  });

  it("exact mode equals scoring every document with runtime.score", async () => {
    for (const q of [0, 1]) {
      const hits = (await search(backend, q, { version: 1 })).hits;
      const expected = await scoreAll(q, embeddings);
      expect(hits.map((h) => h.id)).toEqual(expected.map((h) => h.id));
      hits.forEach((h, i) => expect(h.score).toBeCloseTo(expected[i]!.score, 5));
      // float16 storage: the same as scoring the float16-rounded embeddings.
      const half = (await search(backend, q, { version: 3 })).hits;
      const expectedHalf = await scoreAll(q, halfToFloat32Array(float32ArrayToHalf(embeddings)));
      expect(half.map((h) => h.id)).toEqual(expectedHalf.map((h) => h.id));
      half.forEach((h, i) => expect(h.score).toBeCloseTo(expectedHalf[i]!.score, 5));
    }
  });

  it("the proxy walk seeds from the q-net's gradient, computed on the inference thread, and equals exact mode with every document an entry point", async () => {
    const proxyAll = { ...EXACT, mode: "approx" as const, variant: "proxy" as const, entryPoints: N, maxIter: 1000 };
    const seeded = { ...EXACT, mode: "approx" as const, variant: "proxy" as const, entryPoints: 4, proxySeeds: 16, ncandidates: 2, maxIter: 1000 };
    for (const version of [1, 3]) {
      for (const q of [0, 1]) {
        const exact = await search(backend, q, { version });
        expect((await search(backend, q, { version, params: proxyAll })).hits).toEqual(exact.hits);
        const prepared = await runtime.prepareQNet(qnets[q]!);
        const at: Float32Array[] = [];
        const counted = { ...prepared, score: prepared.score, scoreRows: prepared.scoreRows, gradient: (x: Float32Array) => (at.push(x), prepared.gradient(x)) };
        try {
          const got = await backend.search({ tenant: "acme", index: "docs", version, params: seeded, fields: [], qnet: counted, signal: new AbortController().signal });
          // One request: the gradient at the best rows of the 4-row first frontier (up to 4 points for this small q-net), then 16 seeds.
          expect(at).toHaveLength(1);
          expect(at[0]!.length % dim).toBe(0);
          expect(at[0]!.length / dim).toBe(4);
          expect(got.docsScored).toBeGreaterThanOrEqual(4 + 16 - 4);
          expect(got.hits.length).toBe(K);
        } finally {
          await prepared.release();
        }
      }
    }
  });

  it("approx mode with every document as an entry point equals exact mode", async () => {
    const approx = { ...EXACT, mode: "approx" as const, entryPoints: N, maxIter: 1000 };
    for (const version of [1, 2]) {
      const exact = await search(backend, 0, { version });
      const progress: string[] = [];
      const got = await search(backend, 0, { version, params: approx, onProgress: (p) => progress.push(p.shard) });
      expect(got.hits).toEqual(exact.hits);
      expect(progress.length).toBeGreaterThan(0);
    }
  });

  it("graph search starts from the shard's stored entry rows", async () => {
    // A first frontier of one row per shard, and no walk: each shard can only return its first entry row.
    const params = { ...EXACT, mode: "approx" as const, k: 2, entryPoints: 1, maxIter: 1 };
    for (const seed of [0, 1, 2]) {
      const got = await search(backend, 0, { version: 9, params: { ...params, seed } });
      expect(got.docsScored).toBe(2);
      expect(got.hits.map((h) => h.id).sort()).toEqual(["doc-17", "doc-75"]); // shard 1 starts at doc 50
    }
  });

  it("three shards merged give the answer of one shard over the same documents", async () => {
    for (const params of [EXACT, { ...EXACT, mode: "approx" as const, entryPoints: N, maxIter: 1000 }]) {
      const one = await search(backend, 1, { version: 3, params, fields: ["position"] });
      const three = await search(backend, 1, { version: 2, params, fields: ["position"] });
      expect(three.hits).toEqual(one.hits);
      expect(three.shardsSearched).toBe(3);
    }
    // A subset of shards is searched alone.
    const s2 = await search(backend, 1, { version: 2, shards: ["s2"] });
    expect(s2.hits.every((h) => Number(h.id.slice(4)) >= 70)).toBe(true);
    await expect(search(backend, 1, { version: 2, shards: ["s7"] })).rejects.toThrow(RangeError);
    await expect(search(backend, 1, { version: 2, fields: ["title"] })).rejects.toThrow(/unknown field "title"/);
  });

  it("looks stored embeddings up by id", async () => {
    const got = await backend.embeddingsById("acme", "docs", 1, ["doc-5", "missing", "doc-80"]);
    expect(got.ids).toEqual(["doc-5", "doc-80"]);
    expect(got.missing).toEqual(["missing"]);
    expect(Array.from(got.embeddings.subarray(0, dim))).toEqual(Array.from(embeddings.subarray(5 * dim, 6 * dim)));
  });

  it("a version without a manifest is invisible, and another model's index is refused", async () => {
    await writeFixtureIndex({ store: local, prefix: versionPrefix("acme", "docs", 4), version: 4, modelId: runtime.manifest.modelId, embeddings, dim, ids, withoutManifest: true });
    await expect(search(backend, 0, { version: 4 })).rejects.toThrow(IndexNotFoundError);
    await writeIndex(local, 5, { modelId: "f".repeat(64) });
    const refused = asAnswered(search(backend, 0, { version: 5 }));
    await expect(refused).rejects.toBeInstanceOf(ApiError);
    await expect(refused).rejects.toMatchObject({ status: 409, code: "model_mismatch" });
  });
});

describe("index backend over S3 (radosgw)", () => {
  let s3: S3Store;
  let bucket: string;
  beforeAll(async () => {
    bucket = await freshBucket("index-search");
    s3 = new S3Store({ client: await s3TestClient(), bucket, prefix: "indexes" });
    await writeIndex(s3, 1, { shardSizes: [45, 45] });
    const corrupt = await writeIndex(s3, 2, { shardSizes: [45, 45] });
    const key = versionPrefix("acme", "docs", 2) + corrupt.shards[1]!.key;
    const bytes = await s3.get(key);
    bytes[100] ^= 0x01;
    await s3.put(key, bytes);
    await writeIndex(s3, 3, { prefix: "bare/" }); // a bare version folder, for the CLI
  }, 120_000);

  it("concurrent first queries download each shard once, and agree", async () => {
    const b = await createIndexBackend({ runtime, store: s3, cacheDir: join(root, "s3-cache"), cacheBudgetBytes: 1 << 30, preload: [], logger });
    try {
      const results = await Promise.all(Array.from({ length: 6 }, () => search(b, 0, { version: 1 })));
      expect(new Set(results.map((r) => JSON.stringify(r.hits))).size).toBe(1);
      expect(b.metrics()).toMatchObject({ cache_downloads: 2, shards_open: 2, indexes_loaded: 1 });
      const reference = await search(backend, 0, { version: 3 });
      expect(results[0]!.hits).toEqual(reference.hits);
    } finally {
      await b.close();
    }
  });

  it("a shard whose bytes do not match its sha256 is refused: the answer is partial", async () => {
    const b = await createIndexBackend({ runtime, store: s3, cacheDir: join(root, "s3-cache-2"), cacheBudgetBytes: 1 << 30, preload: [], logger });
    try {
      const result = await search(b, 0, { version: 2, params: { ...EXACT, k: 100 } });
      expect(result.missingShards).toEqual(["s1"]);
      expect(result.shardsSearched).toBe(1);
      expect(result.hits.map((h) => Number(h.id.slice(4))).every((i) => i < 45)).toBe(true);
      expect(b.metrics().cache_verify_failures).toBeGreaterThanOrEqual(1);
      await expect(asAnswered(search(b, 0, { version: 2, shards: ["s1"] }))).rejects.toMatchObject({ status: 503, code: "index_unavailable" });
    } finally {
      await b.close();
    }
  });

  describe("hypencoder search (CLI)", () => {
    let queriesPath: string;
    let s3Env: Record<string, string>;
    beforeAll(async () => {
      queriesPath = join(root, "queries.jsonl");
      await writeFile(queriesPath, QUERIES.map((q) => JSON.stringify(q)).join("\n") + "\n");
      s3Env = (await s3TestEnv()).env;
    });

    async function cli(args: string[], env: Record<string, string> = {}) {
      const childEnv = { ...process.env, ...s3Env, ...env };
      delete childEnv.HYPENCODER_MODEL;
      Object.assign(childEnv, env);
      try {
        const { stdout, stderr } = await execFileAsync(process.execPath, [BIN, "search", ...args], { env: childEnv, maxBuffer: 16 << 20 });
        return { code: 0, stdout, stderr };
      } catch (error) {
        const e = error as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    }

    it("prints one {query_id, hits, stats} line per query (folder, exact mode, --model)", async () => {
      const expected = await Promise.all([0, 1].map((q) => search(backend, q, { version: 3 })));
      const run = await cli(["--index", join(local.root, versionPrefix("acme", "docs", 3)), "--queries", queriesPath, "--k", String(K), "--mode", "exact", "--model", modelDir]);
      expect(run.stderr).toMatch(/90 documents in 1 shards/);
      expect(run.code).toBe(0);
      const lines = run.stdout.trim().split("\n").map((l) => JSON.parse(l));
      expect(lines.map((l) => l.query_id)).toEqual(["q1", "q2"]);
      lines.forEach((line, q) => {
        expect(Object.keys(line)).toEqual(["query_id", "hits", "stats"]);
        expect(line.hits.map((h: { id: string }) => h.id)).toEqual(expected[q]!.hits.map((h) => h.id));
        line.hits.forEach((h: { score: number }, i: number) => expect(h.score).toBeCloseTo(expected[q]!.hits[i]!.score, 5));
        expect(line.stats).toMatchObject({ docsScored: N, iterations: 1, shardsSearched: 1, missingShards: [] });
      });
    });

    it("searches s3:// with the graph parameters, the model from HYPENCODER_MODEL", async () => {
      const args = ["--index", `s3://${bucket}/indexes/bare`, "--queries", queriesPath, "--k", "5", "--entry-points", "4", "--ncandidates", "2", "--max-iter", "3", "--no-early-stop"];
      const run = await cli(args, { HYPENCODER_MODEL: modelDir });
      expect(run.code).toBe(0);
      const lines = run.stdout.trim().split("\n").map((l) => JSON.parse(l));
      expect(lines).toHaveLength(2);
      for (const line of lines) {
        expect(line.hits).toHaveLength(5);
        expect(line.stats.iterations).toBe(3);
        expect(line.stats.docsScored).toBeLessThan(N);
      }
    });

    it("takes --variant and --proxy-seeds, and refuses bad values in one line", async () => {
      const index = join(local.root, versionPrefix("acme", "docs", 3));
      const [published, bad, negative] = await Promise.all([
        cli(["--index", index, "--queries", queriesPath, "--k", "3", "--variant", "published", "--entry-points", "4", "--proxy-seeds", "0", "--model", modelDir]),
        cli(["--index", index, "--queries", queriesPath, "--k", "3", "--variant", "greedy", "--model", modelDir]),
        cli(["--index", index, "--queries", queriesPath, "--k", "3", "--proxy-seeds=-1", "--model", modelDir]),
      ]);
      expect(published.code).toBe(0);
      expect(published.stdout.trim().split("\n")).toHaveLength(2);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/--variant must be one of proxy, best-first, published, got "greedy"/);
      expect(negative.code).toBe(2);
      expect(negative.stderr).toMatch(/--proxy-seeds must be a non-negative integer, got "-1"/);
    });

    it("fails in one line: no model, another model's index", async () => {
      const [noModel, mismatch] = await Promise.all([
        cli(["--index", join(local.root, versionPrefix("acme", "docs", 3)), "--queries", queriesPath, "--k", "3"]),
        cli(["--index", join(local.root, versionPrefix("acme", "docs", 5)), "--queries", queriesPath, "--k", "3", "--model", modelDir]),
      ]);
      expect(noModel.code).toBe(2);
      expect(noModel.stderr).toMatch(/^hypencoder search: no model: pass --model <model-dir> or set HYPENCODER_MODEL/);
      expect(mismatch.code).toBe(1);
      expect(mismatch.stderr).toMatch(/^hypencoder search: index .* was built with model ffffffffffff…, but the loaded model is [0-9a-f]{12}…; .*\n$/);
      expect(mismatch.stdout).toBe("");
    });
  });
});
