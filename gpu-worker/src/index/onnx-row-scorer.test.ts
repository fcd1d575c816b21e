import { describe, expect, it } from "vitest";
import { float32ArrayToHalf } from "../../../shared/qnet/half.ts";
import { closeSharedEmbeddings, type SharedEmbeddings, shareEmbeddings, sharedBytes } from "../model/runtime/shared-embeddings.ts";
import { onnxRowScorer } from "./onnx-row-scorer.ts";

const DIM = 3;
/** Row r is [r, r + 0.5, -r]. */
const EMBEDDINGS = Float32Array.from({ length: 10 * DIM }, (_, i) => {
  const r = Math.floor(i / DIM);
  return [r, r + 0.5, -r][i % DIM]!;
});

/** A PreparedQNet stand-in that scores a row by its first value and records every call. */
function recordingQNet() {
  const calls: (Float32Array | Uint16Array)[] = [];
  return {
    calls,
    async score(rows: Float32Array | Uint16Array): Promise<Float32Array> {
      calls.push(rows);
      const out = new Float32Array(rows.length / DIM);
      for (let i = 0; i < out.length; i++) out[i] = rows instanceof Uint16Array ? rows[i * DIM]! : rows[i * DIM]!;
      // Detach the buffer, as moving it to the inference thread does.
      structuredClone(rows, { transfer: [rows.buffer as ArrayBuffer] });
      return out;
    },
  };
}

describe("onnxRowScorer", () => {
  it("gathers the requested rows, in request order, into fresh arrays", async () => {
    const qnet = recordingQNet();
    const scorer = onnxRowScorer(qnet, EMBEDDINGS, DIM);
    expect(Array.from(await scorer.scoreRows(Uint32Array.from([7, 2, 9])))).toEqual([7, 2, 9]);
    // The shard's own buffer never travels: it is intact after the scorer moved its input away.
    expect(EMBEDDINGS.length).toBe(10 * DIM);
    expect(Array.from(await scorer.scoreRows(Uint32Array.from([0, 1])))).toEqual([0, 1]);
    expect(await scorer.scoreRows(new Uint32Array(0))).toHaveLength(0);
  });

  it("passes float16 bits through as a Uint16Array", async () => {
    const half = float32ArrayToHalf(EMBEDDINGS);
    const qnet = recordingQNet();
    const scores = await onnxRowScorer(qnet, half, DIM).scoreRows(Uint32Array.from([4]));
    expect(qnet.calls[0]).toBeInstanceOf(Uint16Array);
    expect(scores[0]).toBe(half[4 * DIM]);
  });

  it("splits large row sets into batches and keeps the scores in order", async () => {
    const qnet = recordingQNet();
    const rows = Uint32Array.from([9, 8, 7, 6, 5, 4, 3]);
    const scores = await onnxRowScorer(qnet, EMBEDDINGS, DIM, { batchRows: 3 }).scoreRows(rows);
    expect(Array.from(scores)).toEqual([9, 8, 7, 6, 5, 4, 3]);
    expect(qnet.calls.map((c) => c.byteLength)).toEqual([0, 0, 0]); // all three moved away
    expect(qnet.calls).toHaveLength(3);
  });

  it("stops between batches once the signal is aborted", async () => {
    const controller = new AbortController();
    const qnet = {
      calls: 0,
      async score(rows: Float32Array | Uint16Array) {
        if (++this.calls === 2) controller.abort(new Error("client went away"));
        return new Float32Array(rows.length / DIM);
      },
    };
    const scorer = onnxRowScorer(qnet, EMBEDDINGS, DIM, { batchRows: 2, signal: controller.signal });
    await expect(scorer.scoreRows(Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7]))).rejects.toThrow("client went away");
    expect(qnet.calls).toBe(2);
    await expect(scorer.scoreRows(Uint32Array.from([0]))).rejects.toThrow("client went away");
  });

  it("refuses rows out of range, bad shapes and a wrong score count", async () => {
    const scorer = onnxRowScorer(recordingQNet(), EMBEDDINGS, DIM);
    await expect(scorer.scoreRows(Uint32Array.from([10]))).rejects.toThrow(/row 10 is out of range for a shard of 10 rows/);
    expect(() => onnxRowScorer(recordingQNet(), EMBEDDINGS, 4)).toThrow(/not a whole number of 4-wide rows/);
    const short = { score: async () => new Float32Array(1) };
    await expect(onnxRowScorer(short, EMBEDDINGS, DIM).scoreRows(Uint32Array.from([1, 2]))).rejects.toThrow(/returned 1 scores for 2 rows/);
  });

  describe("over shared embeddings (a segment from the ShardCache)", () => {
    function shared(): Float32Array {
      const bytes = sharedBytes(EMBEDDINGS.byteLength);
      const out = new Float32Array(bytes.buffer);
      out.set(EMBEDDINGS);
      return out;
    }

    /** A q-net that records scoreRows calls (row ids only) and fails any score() call: nothing may be gathered here. */
    function byIdQNet() {
      const calls: number[][] = [];
      return {
        calls,
        async score(): Promise<Float32Array> {
          throw new Error("gathered on the main thread");
        },
        async scoreRows(source: SharedEmbeddings, rows: Uint32Array): Promise<Float32Array> {
          calls.push(Array.from(rows));
          return Float32Array.from(rows, (r) => source.data[r * source.dim]!);
        },
      };
    }

    it("sends only row ids, in batches, and stops between batches when aborted", async () => {
      const data = shared();
      shareEmbeddings(data, DIM);
      try {
        const qnet = byIdQNet();
        const scorer = onnxRowScorer(qnet, data, DIM, { batchRows: 2 });
        expect(Array.from(await scorer.scoreRows(Uint32Array.from([7, 2, 9])))).toEqual([7, 2, 9]);
        expect(qnet.calls).toEqual([[7, 2], [9]]);
        await expect(scorer.scoreRows(Uint32Array.from([1, 10]))).rejects.toThrow(/row 10 is out of range for a shard of 10 rows/);
        const controller = new AbortController();
        controller.abort(new Error("client went away"));
        await expect(onnxRowScorer(qnet, data, DIM, { signal: controller.signal }).scoreRows(Uint32Array.of(1))).rejects.toThrow("client went away");
      } finally {
        closeSharedEmbeddings(data);
      }
    });

    it("gathers here when the array is not shared, or no longer is, or the q-net cannot score by id", async () => {
      const data = shared();
      const unshared = byIdQNet();
      await expect(onnxRowScorer(unshared, data, DIM).scoreRows(Uint32Array.of(1))).rejects.toThrow("gathered on the main thread");
      shareEmbeddings(data, DIM);
      closeSharedEmbeddings(data);
      await expect(onnxRowScorer(unshared, data, DIM).scoreRows(Uint32Array.of(1))).rejects.toThrow("gathered on the main thread");
      shareEmbeddings(data, DIM);
      try {
        const scoreOnly = recordingQNet();
        expect(Array.from(await onnxRowScorer(scoreOnly, data, DIM).scoreRows(Uint32Array.of(3)))).toEqual([3]);
        expect(scoreOnly.calls).toHaveLength(1);
        expect(data.length).toBe(10 * DIM); // the shared buffer never travels
      } finally {
        closeSharedEmbeddings(data);
      }
    });
  });
});
