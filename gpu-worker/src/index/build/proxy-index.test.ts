import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILD_DEFAULTS } from "../../../../shared/api/worker-api.ts";
import { decodeShard } from "../../../../shared/index/format.ts";
import { manifestKey, versionPrefix, indexPrefix } from "../../../../shared/index/keys.ts";
import { manifestKeyBase, parseIndexManifest, type IndexManifest } from "../../../../shared/index/manifest.ts";
import { parseProxyIndexSection } from "../../../../shared/index/proxy-index-section.ts";
import { halfToFloat32Array } from "../../../../shared/qnet/half.ts";
import { writeWalFixture } from "../../../../test/support/living-fixture.ts";
import { clusteredEmbeddings } from "../../../../test/support/synthetic-corpus.ts";
import { runCompaction } from "../compaction/run-compaction.ts";
import { prepareProxyIndex } from "../proxy-index-reader.ts";
import type { BlobStore } from "../../store/blob-store.ts";
import { nodeChecksums } from "../../store/checksums.ts";
import { LocalStore } from "../../store/local-store.ts";
import { writeTinyCheckpoint } from "../../model/fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../../model/import-checkpoint.ts";
import { HypencoderRuntime } from "../../model/runtime/runtime.ts";
import { encodeNpyFloat32 } from "./npy.ts";
import { buildProxyIndex } from "./proxy-index.ts";
import { runBuild } from "./run-build.ts";

const TENANT = "acme";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "hypencoder-proxy-index-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("buildProxyIndex", () => {
  it("writes no section below minRows", async () => {
    const fractions: number[] = [];
    expect(await buildProxyIndex(new Float32Array(99 * 4), 4, { minRows: 100, onProgress: (f) => fractions.push(f) })).toBeUndefined();
    expect(fractions).toEqual([1]);
    expect(BUILD_DEFAULTS.proxyIndexMinRows).toBe(4096);
  });

  it("covers every row once, reports progress, and leaves no temp file", async () => {
    const dim = 12;
    const n = 2500;
    const x = clusteredEmbeddings({ n, dim, clusters: 10, seed: 4 });
    const tempDir = join(root, "build-temp");
    await import("node:fs/promises").then((fs) => fs.mkdir(tempDir, { recursive: true }));
    const fractions: number[] = [];
    const section = await buildProxyIndex(x, dim, { minRows: 1000, connectivity: 8, tempDir, onProgress: (f) => fractions.push(f) });
    const layout = parseProxyIndexSection(section!, n, dim);
    if (typeof layout === "string") throw new Error(layout);
    expect(layout.connectivity).toBe(8);
    expect([...layout.slotRows].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(fractions.at(-1)).toBe(1);
    expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
    expect(await readdir(tempDir)).toEqual([]);
  });

  it("stops between slices when aborted", async () => {
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await expect(buildProxyIndex(new Float32Array(2000 * 4).fill(1), 4, { minRows: 10, signal: controller.signal })).rejects.toThrow("stop");
  });

  it("refuses bad parameters", async () => {
    await expect(buildProxyIndex(new Float32Array(10), 3)).rejects.toThrow(RangeError);
    await expect(buildProxyIndex(new Float32Array(12), 3, { connectivity: 1 })).rejects.toThrow(/connectivity/);
  });
});

/** The inner-product top by brute force over a decoded shard's rows. */
function exactTop(rows: Float32Array, dim: number, q: Float32Array, count: number): number[] {
  const n = rows.length / dim;
  const scores = Array.from({ length: n }, (_, r) => {
    let s = 0;
    for (let k = 0; k < dim; k++) s += rows[r * dim + k]! * q[k]!;
    return [r, s] as const;
  });
  return scores.sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, count).map(([r]) => r);
}

async function expectUsefulProxy(shard: ReturnType<typeof decodeShard>): Promise<void> {
  const proxy = await prepareProxyIndex(shard);
  expect(proxy.kind).toBe("hnsw");
  const rows = shard.embeddings instanceof Uint16Array ? halfToFloat32Array(shard.embeddings) : shard.embeddings;
  const q = Float32Array.from({ length: shard.dim }, (_, k) => Math.cos(k * 1.3));
  const top = new Set(exactTop(rows, shard.dim, q, 64));
  const found = proxy.search(q, 64);
  expect([...found].filter((r) => top.has(r)).length / 64).toBeGreaterThan(0.8);
  proxy.close();
}

describe("builds and compactions write the proxyIndex section", () => {
  const n = BUILD_DEFAULTS.proxyIndexMinRows + 300;
  let runtime: HypencoderRuntime;
  let store: BlobStore;

  beforeAll(async () => {
    await writeTinyCheckpoint(join(root, "checkpoint"), { seed: 5 });
    await importCheckpoint(join(root, "checkpoint"), join(root, "model"));
    runtime = await HypencoderRuntime.load(join(root, "model"), { device: "cpu" });
    store = new LocalStore(join(root, "store"));
  });
  afterAll(async () => {
    await runtime?.close();
  });

  it("runBuild: a shard with at least proxyIndexMinRows rows has one, a smaller one has none", async () => {
    const dim = runtime.manifest.embeddingDim;
    const noEncoder = { manifest: runtime.manifest, embedDocuments: () => Promise.reject(new Error("must not encode")) };
    const build = async (version: number, rows: number) => {
      const x = clusteredEmbeddings({ n: rows, dim, clusters: 12, seed: 9 + version });
      const uploads = `tenants/${TENANT}/uploads/u${version}/`;
      await store.put(`${uploads}emb.npy`, encodeNpyFloat32(x, rows, dim));
      await store.put(`${uploads}ids.jsonl`, new TextEncoder().encode(Array.from({ length: rows }, (_, i) => JSON.stringify({ id: `e${i}` })).join("\n") + "\n"));
      const percents: number[] = [];
      const manifest = await runBuild(
        { tenant: TENANT, index: "docs", version, inputs: [{ format: "npy", key: `${uploads}emb.npy`, idsKey: `${uploads}ids.jsonl` }], degree: 10, reverseShare: 0.2, entryRows: 16, storeFields: [], dtype: "float16", shardBytes: 256 * 2 ** 20 },
        { runtime: noEncoder, store, onWarning: () => {}, onProgress: (u) => u.progress?.graphPercent !== undefined && percents.push(u.progress.graphPercent) },
      );
      expect(percents).toEqual([...percents].sort((a, b) => a - b));
      expect(percents.at(-1)).toBeCloseTo(100, 5);
      expect(manifest.shards).toHaveLength(1);
      const entry = manifest.shards[0]!;
      return decodeShard(await store.get(versionPrefix(TENANT, "docs", version) + entry.key), { sha256: entry.sha256 }, { checksums: nodeChecksums });
    };
    const big = await build(1, n);
    expect(big.proxyIndex.length).toBeGreaterThan(0);
    await expectUsefulProxy(big);
    const small = await build(2, 500);
    expect(small.proxyIndex.length).toBe(0);
    expect((await prepareProxyIndex(small)).kind).toBe("exact");
  }, 240_000);

  it("runCompaction: the new segment of a large tail has one", async () => {
    const dim = runtime.manifest.embeddingDim;
    const x = clusteredEmbeddings({ n, dim, clusters: 12, seed: 10 });
    const docs = Array.from({ length: n }, (_, i) => ({ id: `w${i}`, fields: { n: i }, embedding: x.subarray(i * dim, (i + 1) * dim) }));
    const half = Math.floor(n / 2);
    await writeWalFixture({ store, index: "living", seq: 1, modelId: runtime.manifest.modelId, dim, upsert: docs.slice(0, half) });
    await writeWalFixture({ store, index: "living", seq: 2, modelId: runtime.manifest.modelId, dim, upsert: docs.slice(half) });
    const result = await runCompaction(
      { tenant: TENANT, index: "living", baseVersion: 0, version: 1, toSeq: 2, degree: 10 },
      { store, model: { modelId: runtime.manifest.modelId, embeddingDim: dim }, onWarning: () => {} },
    );
    expect(result.stats.segmentsWritten).toBe(1);
    const manifest: IndexManifest = parseIndexManifest(new TextDecoder().decode(await store.get(manifestKey(TENANT, "living", 1))));
    const base = manifestKeyBase(manifest, versionPrefix(TENANT, "living", 1));
    expect(base).toBe(indexPrefix(TENANT, "living"));
    const segment = manifest.shards[0]!;
    const shard = decodeShard(await store.get(base + segment.key), { sha256: segment.sha256 }, { checksums: nodeChecksums });
    expect(shard.docCount).toBe(n);
    expect(shard.proxyIndex.length).toBeGreaterThan(0);
    await expectUsefulProxy(shard);
  }, 240_000);
});
