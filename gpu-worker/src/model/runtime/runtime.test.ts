/**
 * The hot path's handles on the real inference thread (tiny checkpoint, onnxruntime-node, CPU):
 * q-nets the query encoder made stay in the thread and are used there (scores, row scores from
 * shared embeddings, gradients), come out only on request, and every handle is released on every
 * path, which the thread's own counts show.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scoreQNet } from "../../../../shared/qnet/evaluate.ts";
import { qnetGradient } from "../../../../shared/qnet/gradient.ts";
import { float32ArrayToHalf } from "../../../../shared/qnet/half.ts";
import { writeTinyCheckpoint } from "../fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../import-checkpoint.ts";
import { HypencoderRuntime } from "./runtime.ts";
import { closeSharedEmbeddings, shareEmbeddings, sharedBytes } from "./shared-embeddings.ts";

const QUERIES = ["what is a hypernetwork?", "graph search over document embeddings", "short"];
const DOCS = ["a hypernetwork produces the weights of another network", "zebra crossings", "quantum computers use qubits", "an umbrella", "graphs"];

let root: string;
let runtime: HypencoderRuntime;
let embeddings: Float32Array;
let dim: number;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "hypencoder-runtime-test-"));
  await writeTinyCheckpoint(join(root, "checkpoint"), { seed: 5 });
  await importCheckpoint(join(root, "checkpoint"), join(root, "model"));
  runtime = await HypencoderRuntime.load(join(root, "model"), { device: "cpu", intraOpThreads: 1 });
  dim = runtime.manifest.embeddingDim;
  embeddings = await runtime.embedDocuments(DOCS);
});

afterAll(async () => {
  await runtime?.close();
  await rm(root, { recursive: true, force: true });
});

/** `values` copied into shared memory, as the ShardCache holds a shard's embeddings. */
function inSharedMemory<T extends Float32Array | Uint16Array>(values: T): T {
  const bytes = sharedBytes(values.byteLength);
  bytes.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  return (values instanceof Uint16Array ? new Uint16Array(bytes.buffer) : new Float32Array(bytes.buffer)) as T;
}

function rowsOf(source: Float32Array, rows: number[]): Float32Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => out.set(source.subarray(r * dim, (r + 1) * dim), i * dim));
  return out;
}

describe("prepared q-nets from the query encoder", () => {
  it("score in the thread as their copied-out weights do, and the copy is the q-net prepareQNet takes back", async () => {
    const prepared = await runtime.prepareQueries(QUERIES, { batchSize: 2 });
    try {
      expect(await runtime.threadStats()).toMatchObject({ qnets: QUERIES.length });
      for (const p of prepared) {
        const qnet = await p.qnet();
        expect(qnet.weights).toHaveLength(qnet.dims.length - 1);
        const inThread = await p.score(embeddings.slice());
        const reference = scoreQNet(qnet, embeddings);
        inThread.forEach((s, d) => expect(Math.abs(s - reference[d]!)).toBeLessThan(1e-4 * Math.max(1, Math.abs(reference[d]!))));
        const again = await runtime.prepareQNet(qnet);
        expect(await again.score(embeddings.slice())).toEqual(inThread);
        await again.release();
      }
      // encodeQueries (weights copied out) gives the same q-nets.
      const copied = await runtime.encodeQueries(QUERIES);
      expect(copied[1]!.weights[0]).toEqual((await prepared[1]!.qnet()).weights[0]);
    } finally {
      await Promise.all(prepared.map((p) => p.release()));
    }
    expect(await runtime.threadStats()).toEqual({ qnets: 0, embeddings: 0 });
  });

  it("score rows of shared embeddings by id, float32 and float16, exactly as the same rows moved over", async () => {
    const [p] = await runtime.prepareQueries([QUERIES[0]!]);
    const shared32 = inSharedMemory(embeddings.slice());
    const half = float32ArrayToHalf(embeddings);
    const shared16 = inSharedMemory(half);
    try {
      const rows = [4, 0, 2, 2];
      const s32 = shareEmbeddings(shared32, dim);
      expect(await p!.scoreRows(s32, Uint32Array.from(rows))).toEqual(await p!.score(rowsOf(embeddings, rows)));
      const s16 = shareEmbeddings(shared16, dim);
      const halfRows = new Uint16Array(rows.length * dim);
      rows.forEach((r, i) => halfRows.set(half.subarray(r * dim, (r + 1) * dim), i * dim));
      expect(await p!.scoreRows(s16, Uint32Array.from(rows))).toEqual(await p!.score(halfRows));
      // Posted once per shard, however many calls.
      await p!.scoreRows(s32, Uint32Array.of(1));
      expect(await runtime.threadStats()).toEqual({ qnets: 1, embeddings: 2 });
      // The caller's row ids are its own after the call.
      const ids = Uint32Array.of(3, 1);
      await p!.scoreRows(s32, ids);
      expect(Array.from(ids)).toEqual([3, 1]);
      await expect(p!.scoreRows(s32, Uint32Array.of(5))).rejects.toThrow(/row 5 is out of range for a shard of 5 rows/);
    } finally {
      await p!.release();
      closeSharedEmbeddings(shared32);
      closeSharedEmbeddings(shared16);
    }
    // Closing the shard's embeddings (the ShardCache does, on unload or eviction) frees them in the thread.
    await expect.poll(() => runtime.threadStats()).toEqual({ qnets: 0, embeddings: 0 });
  });

  it("computes the gradient in the thread, equal to qnetGradient of the copied-out q-net", async () => {
    const [p] = await runtime.prepareQueries([QUERIES[1]!]);
    try {
      const at = embeddings.slice(dim, 2 * dim);
      const gradient = await p!.gradient(at);
      expect(Array.from(gradient)).toEqual(Array.from(qnetGradient(await p!.qnet(), at)));
      expect(at).toEqual(embeddings.slice(dim, 2 * dim)); // the caller's point is untouched
      await expect(p!.gradient(new Float32Array(dim + 1))).rejects.toThrow(/expects \d+-d inputs/);
    } finally {
      await p!.release();
    }
  });

  it("refuses every use after release, and release is idempotent", async () => {
    const [p] = await runtime.prepareQueries(["released"]);
    await p!.release();
    await p!.release();
    await expect(p!.score(embeddings.slice())).rejects.toThrow(/not registered/);
    await expect(p!.qnet()).rejects.toThrow(/not registered/);
    await expect(p!.gradient(new Float32Array(dim))).rejects.toThrow(/not registered/);
    expect((await runtime.threadStats()).qnets).toBe(0);
  });

  it("refuses closed shared embeddings", async () => {
    const [p] = await runtime.prepareQueries(["closed"]);
    const data = inSharedMemory(embeddings.slice());
    const shared = shareEmbeddings(data, dim);
    closeSharedEmbeddings(data);
    try {
      await expect(p!.scoreRows(shared, Uint32Array.of(0))).rejects.toThrow(/released \(the shard was unloaded\)/);
    } finally {
      await p!.release();
    }
    expect(await runtime.threadStats()).toEqual({ qnets: 0, embeddings: 0 });
  });

  it("a refused query batch registers nothing", async () => {
    await expect(runtime.prepareQueries(QUERIES, { maxLength: 100_000 })).rejects.toThrow(/max length/);
    expect((await runtime.threadStats()).qnets).toBe(0);
  });
});

describe("scoring concurrent queries", () => {
  it("gives the same scores batched across queries (forced on; \"auto\" batches on CUDA only) as one query per call, within 1e-5 relative", async () => {
    const batchedRuntime = await HypencoderRuntime.load(join(root, "model"), { device: "cpu", intraOpThreads: 1, scoreBatching: true });
    const unbatched = await HypencoderRuntime.load(join(root, "model"), { device: "cpu", intraOpThreads: 1, scoreBatching: false });
    const rows = [0, 3, 1, 4, 2, 0, 1];
    const half = inSharedMemory(float32ArrayToHalf(embeddings));
    const halfToo = inSharedMemory(float32ArrayToHalf(embeddings));
    const shared = shareEmbeddings(half, dim);
    const sharedToo = shareEmbeddings(halfToo, dim);
    const [batched, single] = await Promise.all([batchedRuntime.prepareQueries(QUERIES), unbatched.prepareQueries(QUERIES)]);
    try {
      // All in flight at once: the batched runtime groups them into one run of the batched graph.
      const together = await Promise.all(batched.map((p, q) => p.scoreRows(shared, Uint32Array.from(rows.slice(0, 3 + q)))));
      const alone: Float32Array[] = [];
      for (const [q, p] of single.entries()) alone.push(await p.scoreRows(sharedToo, Uint32Array.from(rows.slice(0, 3 + q))));
      together.forEach((scores, q) => {
        expect(scores).toHaveLength(3 + q);
        scores.forEach((s, i) => expect(Math.abs(s - alone[q]![i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(alone[q]![i]!))));
      });
    } finally {
      await Promise.all([...batched, ...single].map((p) => p.release()));
      closeSharedEmbeddings(half);
      closeSharedEmbeddings(halfToo);
      await unbatched.close();
      await batchedRuntime.close();
    }
  });
});
