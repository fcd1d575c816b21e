import type { S3Client } from "@aws-sdk/client-s3";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IndexFormatError } from "../../../shared/index/errors.ts";
import { encodeShard } from "../../../shared/index/format.ts";
import { freshBucket, s3TestClient } from "../../../test/support/s3.ts";
import { nodeChecksums } from "../store/checksums.ts";
import type { BlobStore } from "../store/blob-store.ts";
import { S3Store } from "../store/s3-store.ts";
import { sharedEmbeddingsOf } from "../model/runtime/shared-embeddings.ts";
import { ShardCache, ShardCacheError, type ShardRef } from "./shard-cache.ts";

/** A small valid shard whose embeddings depend on `seed`, so different seeds differ. */
function makeShard(seed: number, docCount = 40, dim = 16): Uint8Array {
  const embeddings = new Float32Array(docCount * dim).map((_, i) => Math.sin(i * 0.1 + seed));
  const offsets = new Uint32Array(docCount + 1);
  const neighbors: number[] = [];
  for (let r = 0; r < docCount; r++) {
    neighbors.push((r + 1) % docCount, (r + 2) % docCount);
    offsets[r + 1] = neighbors.length;
  }
  return encodeShard({
    ids: Array.from({ length: docCount }, (_, i) => `s${seed}-d${i}`),
    fields: Array.from({ length: docCount }, (_, i) => ({ text: `doc ${i} of shard ${seed}` })),
    embeddings,
    dim,
    dtype: "float16",
    graph: { offsets, neighbors: Uint32Array.from(neighbors), degree: 2 },
  });
}

/** `store` with getStream's streams passed through `wrap`. */
function wrapStreams(store: BlobStore, wrap: (source: Readable) => AsyncIterable<Uint8Array>): BlobStore {
  const wrapped = Object.create(store) as BlobStore;
  wrapped.getStream = async (key) => Readable.from(wrap(await store.getStream(key)), { objectMode: false });
  return wrapped;
}

/** Counts GetObject requests the client actually sends. */
function countGets(client: S3Client): { readonly gets: number } {
  const counter = { gets: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === "GetObjectCommand") counter.gets++;
      return next(args);
    },
    { step: "initialize", name: "countGets" },
  );
  return counter;
}

describe("ShardCache over S3Store (radosgw)", () => {
  let bucket: string;
  const dirs: string[] = [];
  let n = 0;
  beforeAll(async () => {
    bucket = await freshBucket("shard-cache");
  });
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  /** A fresh store prefix, cache folder and GET counter per test. */
  async function setup() {
    const client = await s3TestClient();
    const counter = countGets(client);
    const store = new S3Store({ client, bucket, prefix: `cache-test-${++n}` });
    const dir = await mkdtemp(join(tmpdir(), "shard-cache-"));
    dirs.push(dir);
    const upload = async (key: string, bytes: Uint8Array): Promise<ShardRef> => {
      await store.put(key, bytes);
      return { key, bytes: bytes.length, sha256: nodeChecksums.sha256Hex(bytes) };
    };
    return { store, dir, counter, upload };
  }

  it("holds shard bytes in shared memory and shares the embeddings until the decoded copy is dropped", async () => {
    const { store, dir, upload } = await setup();
    const ref = await upload("shared.hxs", makeShard(7));
    const cache = new ShardCache({ dir, budgetBytes: 10_000_000, store });
    const [a, b] = await Promise.all([cache.open(ref), cache.open(ref)]);
    expect(a.shard.embeddings.buffer).toBeInstanceOf(SharedArrayBuffer);
    const shared = sharedEmbeddingsOf(a.shard.embeddings)!;
    expect(shared).toMatchObject({ id: expect.any(Number), dim: 16, rowCount: 40, closed: false });
    expect(sharedEmbeddingsOf(b.shard.embeddings)).toBe(shared);
    const closes: number[] = [];
    shared.onClose(() => closes.push(shared.id));
    a.release();
    expect(closes).toEqual([]); // b still uses it
    b.release();
    b.release();
    expect(closes).toEqual([shared.id]);
    expect(shared.closed).toBe(true);
    expect(sharedEmbeddingsOf(a.shard.embeddings)).toBeUndefined();
    // Reopened from the disk file: shared memory again, a new registration.
    await cache.flush();
    const again = await cache.open(ref);
    expect(again.shard.embeddings.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(cache.stats().hits).toBeGreaterThan(0);
    const reopened = sharedEmbeddingsOf(again.shard.embeddings)!;
    expect(reopened.id).not.toBe(shared.id);
    again.release();
    expect(reopened.closed).toBe(true);
  });

  it("downloads a shard once for 8 concurrent opens and shares one decoded copy", async () => {
    const { store, dir, counter, upload } = await setup();
    const ref = await upload("v000001/shards/s0.hxs", makeShard(1));
    const cache = new ShardCache({ dir, budgetBytes: 10_000_000, store });
    const handles = await Promise.all(Array.from({ length: 8 }, () => cache.open(ref)));
    expect(counter.gets).toBe(1);
    expect(new Set(handles.map((h) => h.shard)).size).toBe(1);
    expect(handles[0].shard.ids[3]).toBe("s1-d3");
    expect(handles[0].shard.fields(5)).toEqual({ text: "doc 5 of shard 1" });
    await cache.flush(); // the file is written behind the download
    expect(cache.stats()).toMatchObject({ downloads: 1, downloadBytes: ref.bytes, misses: 8, hits: 0, files: 1, bytesCached: ref.bytes, verifyFailures: 0 });
    const again = await cache.open(ref);
    expect(cache.stats().hits).toBe(1);
    expect(counter.gets).toBe(1);
    for (const h of [...handles, again]) h.release();
    expect(await readdir(dir)).toEqual([`${ref.sha256}.hxs`]);
  });

  it("refuses an object corrupted after the manifest was written, naming the key", async () => {
    const { store, dir, upload } = await setup();
    const good = makeShard(2);
    const ref = await upload("v000001/shards/s0.hxs", good);
    const bad = good.slice();
    bad[Math.floor(bad.length / 2)] ^= 0x04;
    await store.put(ref.key, bad); // same key, same size; the manifest keeps the old sha256
    const cache = new ShardCache({ dir, budgetBytes: 10_000_000, store });
    const opens = await Promise.allSettled(Array.from({ length: 3 }, () => cache.open(ref)));
    for (const o of opens) {
      expect(o.status).toBe("rejected");
      const err = (o as PromiseRejectedResult).reason as Error;
      expect(err).toBeInstanceOf(IndexFormatError);
      expect(err.message).toMatch(/^shard v000001\/shards\/s0\.hxs from s3:\/\/.*: sha256 mismatch: the manifest says [0-9a-f]{64}, the object hashes to [0-9a-f]{64} \(corrupt or replaced\); refused$/);
    }
    expect(cache.stats()).toMatchObject({ downloads: 1, verifyFailures: 1, files: 0, bytesCached: 0 });
    expect(await readdir(dir)).toEqual([]);
    // A truncated object is refused too.
    await store.put(ref.key, good.subarray(0, good.length - 10));
    await expect(cache.open(ref)).rejects.toThrow(/got \d+ bytes, the manifest says \d+ \(truncated\); refused/);
    // Once the object is repaired, the next open succeeds (failures are not cached).
    await store.put(ref.key, good);
    const h = await cache.open(ref);
    expect(h.shard.docCount).toBe(40);
    h.release();
  });

  it("evicts least-recently-used unpinned shards to stay within its budget", async () => {
    const { store, dir, counter, upload } = await setup();
    const refs = await Promise.all([0, 1, 2].map((i) => upload(`v000001/shards/s${i}.hxs`, makeShard(10 + i))));
    const size = refs[0].bytes;
    expect(refs.every((r) => r.bytes === size)).toBe(true);
    const cache = new ShardCache({ dir, budgetBytes: size * 2 + 100, store });
    const openRelease = async (r: ShardRef) => {
      (await cache.open(r)).release();
      await cache.flush();
    };

    await openRelease(refs[0]);
    await openRelease(refs[1]);
    await openRelease(refs[0]); // s0 is now more recent than s1
    await openRelease(refs[2]); // evicts s1
    expect(cache.stats()).toMatchObject({ files: 2, evictions: 1, downloads: 3, bytesCached: size * 2 });
    expect((await readdir(dir)).sort()).toEqual([refs[0].sha256, refs[2].sha256].map((s) => `${s}.hxs`).sort());
    await openRelease(refs[0]);
    expect(counter.gets).toBe(3);

    // Pinned shards are never evicted: with s0 and s2 open, s1 goes over budget instead.
    const pinned = await Promise.all([cache.open(refs[0]), cache.open(refs[2])]);
    const s1 = await cache.open(refs[1]);
    await cache.flush();
    expect(cache.stats()).toMatchObject({ files: 3, bytesCached: size * 3, evictions: 1 });
    expect(s1.shard.ids[0]).toBe("s11-d0");
    for (const h of pinned) h.release();
    s1.release();
    await new Promise((r) => setTimeout(r, 50)); // release() shrinks in the background
    expect(cache.stats()).toMatchObject({ files: 2, evictions: 2 });

    const tooBig = { ...refs[0], bytes: size * 3 };
    await expect(cache.open(tooBig)).rejects.toThrow(ShardCacheError);
  });

  it("reuses verified files after a restart, and replaces a file corrupted on disk", async () => {
    const { store, dir, counter, upload } = await setup();
    const refs = await Promise.all([0, 1].map((i) => upload(`v000002/shards/s${i}.hxs`, makeShard(20 + i))));
    const first = new ShardCache({ dir, budgetBytes: 10_000_000, store });
    for (const r of refs) (await first.open(r)).release();
    await first.flush();
    expect(counter.gets).toBe(2);

    await writeFile(join(dir, `${"0".repeat(64)}.${"ab".repeat(6)}.tmp`), "partial download");
    const restarted = new ShardCache({ dir, budgetBytes: 10_000_000, store });
    await restarted.init();
    expect(restarted.stats()).toMatchObject({ files: 2, bytesCached: refs[0].bytes + refs[1].bytes });
    expect((await readdir(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    const h = await restarted.open(refs[0]);
    expect(h.shard.ids[0]).toBe("s20-d0");
    h.release();
    expect(counter.gets).toBe(2);
    expect(restarted.stats()).toMatchObject({ hits: 1, misses: 0, downloads: 0 });

    // Flip a byte of the cached file: the CRC check refuses it and the shard is fetched again.
    const path = join(dir, `${refs[1].sha256}.hxs`);
    const bytes = new Uint8Array(await readFile(path));
    bytes[bytes.length - 3] ^= 0x80;
    await writeFile(path, bytes);
    const again = new ShardCache({ dir, budgetBytes: 10_000_000, store });
    const h2 = await again.open(refs[1]);
    expect(h2.shard.ids[1]).toBe("s21-d1");
    h2.release();
    expect(again.stats()).toMatchObject({ verifyFailures: 1, downloads: 1, misses: 1 });
    expect(counter.gets).toBe(3);
  });

  it("serves a verified download at once and writes its file behind it, never a refused one", async () => {
    const { store, dir, upload } = await setup();
    const good = makeShard(3, 2000, 32); // about 0.2 MB: many chunks
    const ref = await upload("v000001/shards/s0.hxs", good);
    const seen: string[][] = [];
    // Look at the folder halfway through each download: nothing is written before verification.
    const watched = wrapStreams(store, async function* (source) {
      let n = 0;
      let looked = false;
      for await (const chunk of source as AsyncIterable<Uint8Array>) {
        yield chunk;
        n += chunk.length;
        if (!looked && n > good.length / 2) {
          looked = true;
          await new Promise((r) => setTimeout(r, 20));
          seen.push(await readdir(dir));
        }
      }
    });
    const cache = new ShardCache({ dir, budgetBytes: 10_000_000, store: watched });
    const h = await cache.open(ref);
    expect(h.shard.docCount).toBe(2000);
    expect(seen).toEqual([[]]);
    // Until the write completes, the bytes count against the budget as a download in flight.
    expect(cache.stats()).toMatchObject({ files: 0, downloads: 1 });
    h.release();
    await cache.flush();
    expect(cache.stats()).toMatchObject({ files: 1, bytesCached: ref.bytes, persistFailures: 0 });
    expect(await readdir(dir)).toEqual([`${ref.sha256}.hxs`]);
    expect(Buffer.compare(await readFile(join(dir, `${ref.sha256}.hxs`)), good)).toBe(0); // (toEqual is slow on 0.2 MB)
    // Released before or after the write, the next open reads the file: no second download.
    const again = await cache.open(ref);
    expect(cache.stats()).toMatchObject({ downloads: 1, hits: 1 });
    again.release();

    // A corrupt object never touches the folder.
    const bad = good.slice();
    bad[bad.length - 100] ^= 0x01;
    await store.put("v000001/shards/s1.hxs", bad);
    const badRef = { ...ref, key: "v000001/shards/s1.hxs" };
    const dir2 = await mkdtemp(join(tmpdir(), "shard-cache-"));
    dirs.push(dir2);
    const cache2 = new ShardCache({ dir: dir2, budgetBytes: 10_000_000, store });
    await expect(cache2.open(badRef)).rejects.toThrow(/^shard v000001\/shards\/s1\.hxs from s3:.*: sha256 mismatch/);
    await cache2.flush();
    expect(await readdir(dir2)).toEqual([]);
  });

  it("still serves a shard whose file cannot be written, and counts the failure", async () => {
    const { store, upload } = await setup();
    const ref = await upload("v000001/shards/s0.hxs", makeShard(5));
    const dir = await mkdtemp(join(tmpdir(), "shard-cache-"));
    dirs.push(dir);
    const cache = new ShardCache({ dir, budgetBytes: 10_000_000, store });
    await cache.init();
    await rm(dir, { recursive: true }); // the disk went away after start
    const h = await cache.open(ref);
    expect(h.shard.ids[2]).toBe("s5-d2");
    await cache.flush();
    expect(cache.stats()).toMatchObject({ files: 0, bytesCached: 0, persistFailures: 1 });
    h.release();
  });

  it("refuses a download whose stream ends early or fails, and keeps nothing", async () => {
    const { store, dir, upload } = await setup();
    const good = makeShard(4, 2000, 32);
    const ref = await upload("v000001/shards/s0.hxs", good);
    // The stream ends cleanly (no error) after half the bytes: only the size check catches it.
    const endsEarly = wrapStreams(store, async function* (source) {
      let n = 0;
      for await (const chunk of source as AsyncIterable<Uint8Array>) {
        const keep = Math.min(chunk.length, Math.floor(good.length / 2) - n);
        if (keep <= 0) return;
        yield chunk.subarray(0, keep);
        n += keep;
      }
    });
    const cache = new ShardCache({ dir, budgetBytes: 10_000_000, store: endsEarly });
    await expect(cache.open(ref)).rejects.toThrow(
      new RegExp(`^shard v000001/shards/s0\\.hxs from s3:.*: got ${Math.floor(good.length / 2)} bytes, the manifest says ${good.length} \\(truncated\\); refused$`),
    );
    expect(cache.stats()).toMatchObject({ downloads: 1, verifyFailures: 1, files: 0, bytesCached: 0 });
    expect(await readdir(dir)).toEqual([]);

    // The stream fails partway (a dropped connection): its error comes through, nothing is kept.
    const fails = wrapStreams(store, async function* (source) {
      let n = 0;
      for await (const chunk of source as AsyncIterable<Uint8Array>) {
        yield chunk;
        n += chunk.length;
        if (n > good.length / 3) throw new Error("connection reset by test");
      }
    });
    const cache2 = new ShardCache({ dir, budgetBytes: 10_000_000, store: fails });
    await expect(cache2.open(ref)).rejects.toThrow(/connection reset by test/);
    expect(cache2.stats()).toMatchObject({ files: 0, bytesCached: 0 });
    expect(await readdir(dir)).toEqual([]);

    // More bytes than the manifest says are refused too.
    const cache3 = new ShardCache({ dir, budgetBytes: 10_000_000, store });
    await expect(cache3.open({ ...ref, bytes: ref.bytes - 1 })).rejects.toThrow(/more than the \d+ bytes the manifest says; refused/);
    expect(await readdir(dir)).toEqual([]);

    // The same cache opens the shard once the store behaves.
    const cache4 = new ShardCache({ dir, budgetBytes: 10_000_000, store });
    const h = await cache4.open(ref);
    expect(h.shard.ids[7]).toBe("s4-d7");
    h.release();
    await cache4.flush();
    expect(await readdir(dir)).toEqual([`${ref.sha256}.hxs`]);
  });

  it("refuses an object that matches its sha256 but is not a valid shard, keeping no file", async () => {
    const { store, dir, upload } = await setup();
    const junk = new Uint8Array(5000).map((_, i) => (i * 31) & 0xff);
    const ref = await upload("v000001/shards/junk.hxs", junk);
    const cache = new ShardCache({ dir, budgetBytes: 10_000_000, store });
    await expect(cache.open(ref)).rejects.toThrow(IndexFormatError);
    expect(cache.stats()).toMatchObject({ downloads: 1, verifyFailures: 1, files: 0 });
    expect(await readdir(dir)).toEqual([]);
  });

  it("rejects malformed refs clearly", async () => {
    const { store, dir } = await setup();
    const cache = new ShardCache({ dir, budgetBytes: 1000, store });
    await expect(cache.open({ key: "k", bytes: 10, sha256: "XYZ" })).rejects.toThrow(/sha256 must be 64 lowercase hex digits/);
    await expect(cache.open({ key: "k", bytes: 0, sha256: "a".repeat(64) })).rejects.toThrow(/bytes must be a positive integer/);
    await expect(cache.open({ key: "missing.hxs", bytes: 10, sha256: "a".repeat(64) })).rejects.toThrow(/not found: missing\.hxs/);
    expect(() => new ShardCache({ dir, budgetBytes: 0, store })).toThrow(/budget must be a positive number/);
  });
});
