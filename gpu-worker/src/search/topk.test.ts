import { describe, expect, it } from "vitest";
import { type RowHit, TopK, mergeRowTopK } from "./topk.ts";
import { seededRandom } from "./random.ts";

describe("TopK", () => {
  it("keeps the k best, best first, equal scores by lower row", () => {
    const top = new TopK(3);
    [[5, 1], [2, 3], [9, 1], [1, 7], [3, 3], [4, 3]].forEach(([row, score]) => top.push(row!, score!));
    expect(top.sorted(2)).toEqual([
      { shard: 2, row: 1, score: 7 },
      { shard: 2, row: 2, score: 3 },
      { shard: 2, row: 3, score: 3 },
    ]);
  });

  it("matches a full sort on random input whatever the insertion order", () => {
    const rand = seededRandom(3);
    const scores = Array.from({ length: 2000 }, () => Math.round(rand() * 50)); // many ties
    const expected = scores
      .map((score, row) => ({ shard: 0, row, score }))
      .sort((a, b) => b.score - a.score || a.row - b.row)
      .slice(0, 25);
    const top = new TopK(25);
    for (let row = scores.length - 1; row >= 0; row--) top.push(row, scores[row]!);
    expect(top.sorted()).toEqual(expected);
  });

  it("ignores NaN, reports entry, and rejects bad k", () => {
    const top = new TopK(1);
    expect(top.push(0, NaN)).toBe(false);
    expect(top.push(1, 1)).toBe(true);
    expect(top.push(2, 0)).toBe(false);
    expect(top.worstScore).toBe(1);
    expect(() => new TopK(-1)).toThrow(RangeError);
    expect(() => new TopK(1.5)).toThrow(/non-negative integer/);
  });
});

describe("mergeRowTopK", () => {
  it("merges per-shard lists into the global top k", () => {
    const a: RowHit[] = [{ shard: 0, row: 4, score: 0.9 }, { shard: 0, row: 1, score: 0.5 }];
    const b: RowHit[] = [{ shard: 1, row: 2, score: 0.7 }, { shard: 1, row: 4, score: 0.5 }, { shard: 1, row: 0, score: 0.1 }];
    const c: RowHit[] = [{ shard: 2, row: 4, score: 0.9 }];
    expect(mergeRowTopK([a, b, c], 4)).toEqual([
      { shard: 0, row: 4, score: 0.9 },
      { shard: 2, row: 4, score: 0.9 },
      { shard: 1, row: 2, score: 0.7 },
      { shard: 0, row: 1, score: 0.5 },
    ]);
    expect(mergeRowTopK([], 3)).toEqual([]);
    expect(() => mergeRowTopK([a], -2)).toThrow(RangeError);
  });
});
