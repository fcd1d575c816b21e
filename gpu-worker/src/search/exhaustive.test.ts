import { describe, expect, it } from "vitest";
import { exhaustiveSearch } from "./exhaustive.ts";
import type { RowScorer } from "./row-scorer.ts";

/** Scores row r as f(r) and records the batch sizes it was called with. */
function fnScorer(f: (row: number) => number, calls: number[] = []): RowScorer {
  return {
    async scoreRows(rows) {
      calls.push(rows.length);
      return Float32Array.from(rows, f);
    },
  };
}

describe("exhaustiveSearch", () => {
  it("scores every row in batches and returns the top k", async () => {
    const calls: number[] = [];
    const { hits, stats } = await exhaustiveSearch(fnScorer((r) => -Math.abs(r - 40), calls), 100, { k: 3, batchSize: 32, shard: 5 });
    expect(hits.map((h) => h.row)).toEqual([40, 39, 41]);
    expect(hits[0]!.shard).toBe(5);
    expect(calls).toEqual([32, 32, 32, 4]);
    expect(stats.docsScored).toBe(100);
  });

  it("caps k at the row count and handles an empty shard", async () => {
    expect((await exhaustiveSearch(fnScorer((r) => r), 2, { k: 10 })).hits).toHaveLength(2);
    expect((await exhaustiveSearch(fnScorer((r) => r), 0)).hits).toEqual([]);
  });

  it("validates its parameters and the scorer's output", async () => {
    await expect(exhaustiveSearch(fnScorer((r) => r), 10, { k: 0 })).rejects.toThrow(/k must be an integer ≥ 1/);
    await expect(exhaustiveSearch(fnScorer((r) => r), 10, { batchSize: 2.5 })).rejects.toThrow(RangeError);
    const bad: RowScorer = { scoreRows: async () => new Float32Array(1) };
    await expect(exhaustiveSearch(bad, 10)).rejects.toThrow(/returned 1 scores for 10 rows/);
  });

  it("skips dead rows entirely: never scored, never returned, even when they would win", async () => {
    const dead = new Set([40, 39, 7]);
    const seen: number[] = [];
    const detaching: RowScorer = {
      async scoreRows(rows) {
        const copy = Array.from(rows);
        seen.push(...copy);
        structuredClone(rows.buffer, { transfer: [rows.buffer as ArrayBuffer] });
        return Float32Array.from(copy, (r) => -Math.abs(r - 40));
      },
    };
    const { hits, stats } = await exhaustiveSearch(detaching, 100, { k: 3, batchSize: 32, isDead: (r) => dead.has(r) });
    expect(hits.map((h) => h.row)).toEqual([41, 38, 42]);
    expect(seen.filter((r) => dead.has(r))).toEqual([]);
    expect(seen).toHaveLength(97);
    expect(stats.docsScored).toBe(97);
    // Every row dead: nothing scored, nothing returned.
    expect((await exhaustiveSearch(detaching, 5, { isDead: () => true })).hits).toEqual([]);
  });
});
