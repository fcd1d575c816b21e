import { describe, expect, it } from "vitest";
import { float32ArrayToHalf } from "../../../shared/qnet/half.ts";
import { proxyGradientPoints, proxySeedRows, shardRow } from "./proxy-seeds.ts";

/** 6 rows of 2-d: row r = (r, 10 − r), so inner products with (1, 0) rank rows 5, 4, … and with (0, 1) rows 0, 1, …. */
const rows = Float32Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? i / 2 : 10 - (i - 1) / 2));
const shard = { embeddings: float32ArrayToHalf(rows), dim: 2 };
const exact = {
  search(vector: Float32Array, count: number) {
    const order = [0, 1, 2, 3, 4, 5].sort((a, b) => vector[0]! * (b - a) + vector[1]! * (a - b));
    return Uint32Array.from(order.slice(0, count));
  },
};

describe("proxySeedRows", () => {
  it("takes the gradient at the best hits' rows (float16 decoded) and shares the seeds out between them, without repeats", async () => {
    const at: number[][] = [];
    // One request for both points: best hit row 1 → direction (1, 0); second, row 4 → (0, 1).
    const gradient = async (x: Float32Array) => (at.push([...x]), Float32Array.of(1, 0, 0, 1));
    const seeds = proxySeedRows(shard, { gradient }, async () => exact, 2);
    const got = await seeds([{ shard: 0, row: 1, score: 9 }, { shard: 0, row: 4, score: 8 }, { shard: 0, row: 2, score: 1 }], 6);
    expect(at).toEqual([[1, 9, 4, 6]]);
    // 3 seeds each: (1,0) → 5, 4, 3; (0,1) → 0, 1, 2.
    expect([...got]).toEqual([5, 4, 3, 0, 1, 2]);
    const overlapping = await proxySeedRows(shard, { gradient: async () => Float32Array.of(1, 0, 1, 0) }, async () => exact, 2)(
      [{ shard: 0, row: 1, score: 9 }, { shard: 0, row: 4, score: 8 }],
      4,
    );
    expect([...overlapping]).toEqual([5, 4]);
  });

  it("takes as many gradient points as a fixed compute budget buys: 4 for small q-nets, 1 for 6-layer 768-d ones", () => {
    expect(proxyGradientPoints([128, 128, 128, 1])).toBe(4);
    expect(proxyGradientPoints([768, 768, 768, 768, 768, 768, 768, 1])).toBe(1);
    expect(proxyGradientPoints([768, 768, 768, 1])).toBe(1);
    expect(proxyGradientPoints([256, 256, 256, 1])).toBe(4);
  });

  it("gives no seeds without hits, and reads float32 rows as they are", async () => {
    let asked = 0;
    const none = await proxySeedRows(shard, { gradient: async () => (asked++, Float32Array.of(1, 0)) }, async () => exact)([], 8);
    expect([...none]).toEqual([]);
    expect(asked).toBe(0);
    expect([...shardRow({ embeddings: rows, dim: 2 }, 3)]).toEqual([3, 7]);
  });
});
