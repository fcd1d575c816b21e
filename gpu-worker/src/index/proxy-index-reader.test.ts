import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { IndexFormatError } from "../../../shared/index/errors.ts";
import { crc32 } from "../../../shared/index/crc32.ts";
import { type DecodedShard, decodeShard, encodeShard, type ShardDtype, SHARD_PREAMBLE_BYTES } from "../../../shared/index/format.ts";
import { PROXY_INDEX_HEADER_BYTES, PROXY_INDEX_LEVELS_OFFSET, parseProxyIndexSection, USEARCH_DENSE_HEAD_BYTES } from "../../../shared/index/proxy-index-section.ts";
import { float32ArrayToHalf, halfToFloat32Array } from "../../../shared/qnet/half.ts";
import { clusteredEmbeddings } from "../../../test/support/synthetic-corpus.ts";
import { MANIFEST_FILE, shardRelativeKey, versionPrefix } from "../../../shared/index/keys.ts";
import { type IndexManifest, parseIndexManifest, serializeIndexManifest } from "../../../shared/index/manifest.ts";
import { seededRandom } from "../search/random.ts";
import { nodeChecksums } from "../store/checksums.ts";
import { LocalStore } from "../store/local-store.ts";
import { IndexRegistry } from "./index-registry.ts";
import { ShardCache } from "./shard-cache.ts";
import { buildProxyIndex } from "./build/proxy-index.ts";
import { closeProxyIndex, PROXY_VECTORS, prepareProxyIndex, proxyIndexBytes } from "./proxy-index-reader.ts";

function shardBytes(embeddings: Float32Array, dim: number, dtype: ShardDtype, proxyIndex?: Uint8Array): Uint8Array {
  const n = embeddings.length / dim;
  return encodeShard({
    ids: Array.from({ length: n }, (_, i) => `d${i}`),
    fields: Array.from({ length: n }, () => ({})),
    embeddings,
    dim,
    dtype,
    graph: { offsets: new Uint32Array(n + 1), neighbors: new Uint32Array(0), degree: 0 },
    ...(proxyIndex ? { proxyIndex } : {}),
  });
}

/** The stored values of a float16 shard, as the build rounds them. */
function asStored(x: Float32Array): Float32Array {
  return halfToFloat32Array(float32ArrayToHalf(x));
}

/** Rows by descending inner product, ties to the lower row (the obviously correct reference). */
function exactTop(x: Float32Array, dim: number, q: Float32Array, count: number): number[] {
  const n = x.length / dim;
  const score = (r: number) => {
    let s = 0;
    for (let k = 0; k < dim; k++) s += x[r * dim + k]! * q[k]!;
    return s;
  };
  return Array.from({ length: n }, (_, r) => [r, score(r)] as const)
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, count)
    .map(([r]) => r);
}

function randomVectors(count: number, dim: number, seed: number, scale = 1): Float32Array[] {
  const rand = seededRandom(seed);
  return Array.from({ length: count }, () => Float32Array.from({ length: dim }, () => (rand() - 0.5) * scale));
}

function recall(found: ArrayLike<number>, truth: number[]): number {
  const want = new Set(truth);
  let hit = 0;
  for (let i = 0; i < found.length; i++) if (want.has(found[i]!)) hit++;
  return hit / truth.length;
}

describe("prepareProxyIndex without a section (brute force)", () => {
  it("returns the exact inner-product top, best first, ties to the lower row, in both dtypes", async () => {
    const dim = 6;
    const x = asStored(clusteredEmbeddings({ n: 300, dim, clusters: 4, seed: 1 }));
    // Two rows identical to others, so ties must break by row.
    x.copyWithin(50 * dim, 10 * dim, 11 * dim);
    x.copyWithin(7 * dim, 250 * dim, 251 * dim);
    for (const dtype of ["float16", "float32"] as const) {
      const shard = decodeShard(shardBytes(x, dim, dtype));
      const proxy = await prepareProxyIndex(shard);
      expect(proxy.kind).toBe("exact");
      expect(proxy.bytes).toBe(0);
      for (const q of randomVectors(5, dim, 2)) {
        expect(Array.from(proxy.search(q, 40))).toEqual(exactTop(x, dim, q, 40));
      }
      // More than the shard holds: every row, in order.
      const q = randomVectors(1, dim, 3)[0]!;
      expect(Array.from(proxy.search(q, 1000))).toEqual(exactTop(x, dim, q, 300));
    }
  });

  it("refuses a vector of the wrong width, a non-finite value and a bad count", async () => {
    const dim = 4;
    const shard = decodeShard(shardBytes(asStored(clusteredEmbeddings({ n: 20, dim, clusters: 2, seed: 1 })), dim, "float16"));
    const proxy = await prepareProxyIndex(shard);
    expect(() => proxy.search(new Float32Array(3), 5)).toThrow(RangeError);
    expect(() => proxy.search(Float32Array.of(1, Number.NaN, 0, 0), 5)).toThrow(/not a finite number/);
    expect(() => proxy.search(new Float32Array(4), 0)).toThrow(/positive integer/);
    expect(() => proxy.search(new Float32Array(4), 1.5)).toThrow(/positive integer/);
  });
});

describe("prepareProxyIndex with a usearch section", () => {
  const dim = 24;
  const n = 3000;
  const x = asStored(clusteredEmbeddings({ n, dim, clusters: 30, seed: 7 }));
  const built = buildProxyIndex(x, dim, { minRows: 1000 });

  it("build → encode → decode → search finds the inner-product top with high recall, in both dtypes and both vector kinds", async () => {
    const section = (await built)!;
    expect(section).toBeInstanceOf(Uint8Array);
    for (const [dtype, vectors] of [["float16", "i8"], ["float32", "i8"], ["float16", "f16"]] as const) {
      const shard = decodeShard(shardBytes(x, dim, dtype, section));
      expect(shard.proxyIndex.length).toBe(section.length);
      const proxy = await prepareProxyIndex(shard, { vectors });
      expect(proxy.kind).toBe("hnsw");
      for (const count of [64, 256]) {
        let total = 0;
        const queries = randomVectors(10, dim, count);
        for (const q of queries) {
          const rows = proxy.search(q, count);
          expect(rows.length).toBe(count);
          expect(new Set(rows).size).toBe(count);
          total += recall(rows, exactTop(x, dim, q, count));
        }
        expect(total / queries.length, `recall@${count} (${dtype}, ${vectors})`).toBeGreaterThan(0.85);
      }
      closeProxyIndex(shard);
    }
  });

  it("finds the same rows for a tiny (gradient-sized) vector as for the same direction at unit scale", async () => {
    const shard = decodeShard(shardBytes(x, dim, "float16", (await built)!));
    const proxy = await prepareProxyIndex(shard);
    for (const q of randomVectors(3, dim, 11)) {
      const tiny = q.map((v) => v * 1e-7);
      expect(Array.from(proxy.search(tiny, 50))).toEqual(Array.from(proxy.search(q, 50)));
      expect(recall(proxy.search(tiny, 50), exactTop(x, dim, q, 50))).toBeGreaterThan(0.8);
    }
    proxy.close();
  });

  it("opens once per shard, counts its memory, and frees it on close", async () => {
    const shard = decodeShard(shardBytes(x, dim, "float16", (await built)!));
    expect(proxyIndexBytes(shard)).toBe(0);
    const [a, b] = await Promise.all([prepareProxyIndex(shard), prepareProxyIndex(shard)]);
    expect(a).toBe(b);
    expect(await prepareProxyIndex(shard)).toBe(a);
    // At least usearch's copy of the vectors (dim bytes a row as i8) and the graph.
    expect(PROXY_VECTORS).toBe("i8");
    expect(a.bytes).toBeGreaterThan(n * dim + shard.proxyIndex.length - PROXY_INDEX_LEVELS_OFFSET);
    const f16 = await prepareProxyIndex(decodeShard(shardBytes(x, dim, "float16", (await built)!)), { vectors: "f16" });
    expect(f16.bytes - a.bytes).toBe(n * dim); // halves instead of bytes
    f16.close();
    expect(proxyIndexBytes(shard)).toBe(a.bytes);
    closeProxyIndex(shard);
    expect(proxyIndexBytes(shard)).toBe(0);
    expect(() => a.search(new Float32Array(dim).fill(1), 5)).toThrow(/after close/);
    a.close(); // idempotent
    const again = await prepareProxyIndex(shard);
    expect(again).not.toBe(a);
    expect(again.search(new Float32Array(dim).fill(1), 5).length).toBe(5);
    again.close();
  });

  describe("a corrupt section is refused, never loaded", () => {
    /** The section with `edit` applied to a copy. */
    const corrupt = async (edit: (s: Uint8Array, v: DataView) => void): Promise<Uint8Array> => {
      const s = (await built)!.slice();
      edit(s, new DataView(s.buffer));
      return s;
    };
    const graph = PROXY_INDEX_HEADER_BYTES + USEARCH_DENSE_HEAD_BYTES;
    const firstNode = PROXY_INDEX_LEVELS_OFFSET + 2 * n;
    const cases: Array<{ name: string; edit: (s: Uint8Array, v: DataView) => void; message: RegExp }> = [
      { name: "bad magic", edit: (s) => (s[0] = 0x41), message: /bad magic/ },
      { name: "other row count", edit: (_, v) => v.setUint32(12, n + 1, true), message: /covers 3001 rows/ },
      { name: "reserved bytes set", edit: (s) => (s[27] = 1), message: /reserved header bytes/ },
      { name: "another metric", edit: (s) => (s[PROXY_INDEX_HEADER_BYTES + 13] = 0x69), message: /metric 105/ },
      { name: "other usearch dimensions", edit: (_, v) => v.setBigUint64(PROXY_INDEX_HEADER_BYTES + 33, BigInt(dim + 1), true), message: /usearch dimensions 25/ },
      { name: "entry slot out of range", edit: (_, v) => v.setBigUint64(graph + 32, BigInt(n), true), message: /entry slot 3000/ },
      { name: "connectivity 1", edit: (_, v) => v.setBigUint64(graph + 8, 1n, true), message: /connectivity 1/ },
      { name: "negative level", edit: (_, v) => v.setInt16(PROXY_INDEX_LEVELS_OFFSET + 2, -1, true), message: /level -1/ },
      { name: "key out of range", edit: (_, v) => v.setUint32(firstNode, n, true), message: /key 3000/ },
      { name: "too many neighbours", edit: (_, v) => v.setUint32(firstNode + 10, 10_000, true), message: /10000 neighbours/ },
      { name: "neighbour slot out of range", edit: (_, v) => v.setUint32(firstNode + 14, 0xffffffff, true), message: /links to slot 4294967295/ },
    ];
    for (const { name, edit, message } of cases) {
      it(name, async () => {
        const section = await corrupt(edit);
        const problem = parseProxyIndexSection(section, n, dim);
        expect(problem).toMatch(message);
        // The encoder refuses it…
        expect(() => shardBytes(x, dim, "float16", section)).toThrow(IndexFormatError);
        // …a shard carrying it (CRCs intact) is refused at decode…
        const goodFile = shardBytes(x, dim, "float16", (await built)!);
        const good = decodeShard(goodFile);
        const bad = withSection(goodFile, good, section);
        expect(() => decodeShard(bad)).toThrow(IndexFormatError);
        expect(() => decodeShard(bad)).toThrow(message);
        // …and a shard that skipped decodeShard is refused at open, with no native call.
        const forged: DecodedShard = { ...good, proxyIndex: section };
        await expect(prepareProxyIndex(forged)).rejects.toThrow(IndexFormatError);
      });
    }

    it("a truncated section", async () => {
      const section = (await built)!;
      expect(parseProxyIndexSection(section.subarray(0, section.length - 1), n, dim)).toMatch(/its graph needs exactly/);
      expect(parseProxyIndexSection(section.subarray(0, 100), n, dim)).toMatch(/shorter than/);
    });
  });
});

/**
 * The shard file with its proxyIndex section's bytes replaced by `section` (same length) and the
 * body CRC (in the header JSON) and header CRC fixed, so only the section's own checks can fail.
 */
function withSection(file: Uint8Array, shard: DecodedShard, section: Uint8Array): Uint8Array {
  const out = file.slice();
  const view = new DataView(out.buffer);
  const headerLength = view.getUint32(12, true);
  const headerBytes = out.subarray(SHARD_PREAMBLE_BYTES, SHARD_PREAMBLE_BYTES + headerLength);
  const header = JSON.parse(new TextDecoder().decode(headerBytes)) as { bodyCrc32: number; sections: { proxyIndex: { offset: number; length: number } } };
  expect(header.sections.proxyIndex.length).toBe(section.length);
  expect(shard.proxyIndex.length).toBe(section.length);
  out.set(section, header.sections.proxyIndex.offset);
  header.bodyCrc32 = crc32(out.subarray(SHARD_PREAMBLE_BYTES + headerLength));
  const json = new TextEncoder().encode(JSON.stringify(header).padEnd(headerLength, " "));
  expect(json.length).toBe(headerLength);
  out.set(json, SHARD_PREAMBLE_BYTES);
  view.setUint32(16, crc32(json), true);
  return out;
}

describe("with the worker's registry: opened with the shard, counted in its version, freed with it", () => {
  const dim = 16;
  const n = 2000;
  const x = asStored(clusteredEmbeddings({ n, dim, clusters: 10, seed: 3 }));

  async function setup(section: Uint8Array) {
    const dir = await mkdtemp(join(tmpdir(), "proxy-index-registry-"));
    const store = new LocalStore(join(dir, "store"));
    const prefix = versionPrefix("acme", "docs", 1);
    const bytes = shardBytes(x, dim, "float16", section);
    const key = shardRelativeKey("s0");
    await store.put(prefix + key, bytes);
    const manifest: IndexManifest = {
      format: "hypencoder.index",
      version: 1,
      tenant: "acme",
      index: "docs",
      indexVersion: 1,
      createdAt: new Date().toISOString(),
      model: { id: "ab".repeat(32), embeddingDim: dim },
      dtype: "float16",
      docCount: n,
      graph: { metric: "l2", degree: 0, builder: "exact", reachableFraction: 1 },
      fields: [],
      shards: [{ id: "s0", key, bytes: bytes.length, sha256: nodeChecksums.sha256Hex(bytes), docStart: 0, docCount: n }],
    };
    await store.put(prefix + MANIFEST_FILE, new TextEncoder().encode(serializeIndexManifest(manifest)));
    const cache = new ShardCache({ dir: join(dir, "cache"), budgetBytes: 100_000_000, store });
    const registry = new IndexRegistry({ store, cache, modelId: "ab".repeat(32) });
    return { dir, registry };
  }

  it("prepares the proxy index when the shard opens and frees it when the version is unloaded", async () => {
    const section = (await buildProxyIndex(x, dim, { minRows: 100 }))!;
    const { dir, registry } = await setup(section);
    try {
      const ref = { tenant: "acme", index: "docs", version: 1 };
      const lease = await registry.acquire(ref);
      const shard = await lease.index.shard("s0");
      const bytes = proxyIndexBytes(shard);
      expect(bytes).toBeGreaterThan(n * dim);
      expect(lease.index.memory().bytes).toBe(shard.byteLength + bytes);
      const proxy = await prepareProxyIndex(shard);
      expect(proxy.kind).toBe("hnsw");
      expect(proxy.search(new Float32Array(dim).fill(1), 10).length).toBe(10);
      lease.release();
      expect(await registry.unload(ref)).toBe(true);
      expect(proxyIndexBytes(shard)).toBe(0);
      expect(() => proxy.search(new Float32Array(dim).fill(1), 10)).toThrow(/after close/);
    } finally {
      await registry.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a shard whose section is corrupt (its sha256 and CRCs intact)", async () => {
    const section = (await buildProxyIndex(x, dim, { minRows: 100 }))!;
    const good = decodeShard(shardBytes(x, dim, "float16", section));
    const bad = section.slice();
    new DataView(bad.buffer).setUint32(PROXY_INDEX_LEVELS_OFFSET + 2 * n + 14, n + 5, true);
    const { dir, registry } = await setup(section);
    const prefix = versionPrefix("acme", "docs", 1);
    try {
      // Replace the shard object and its manifest entry by the corrupt one, consistently.
      const file = withSection(shardBytes(x, dim, "float16", section), good, bad);
      const store = registry.store;
      await store.put(prefix + shardRelativeKey("s0"), file);
      const manifest = parseIndexManifest(new TextDecoder().decode(await store.get(prefix + MANIFEST_FILE)));
      manifest.shards[0] = { ...manifest.shards[0]!, bytes: file.length, sha256: nodeChecksums.sha256Hex(file) };
      await store.put(prefix + MANIFEST_FILE, new TextEncoder().encode(serializeIndexManifest(manifest)));
      const index = await registry.get({ tenant: "acme", index: "docs", version: 1 });
      await expect(index.shard("s0")).rejects.toThrow(IndexFormatError);
      await expect(index.shard("s0")).rejects.toThrow(/links to slot/);
    } finally {
      await registry.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
