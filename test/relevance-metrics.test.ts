import { describe, expect, it } from "vitest";
import { ndcgAt, precisionAt, recallAt, reciprocalRank, topIds } from "./support/relevance-metrics.ts";

const relevant = new Set(["b", "d"]);

describe("ranking metrics", () => {
  it("reciprocal rank counts the first relevant id within k", () => {
    expect(reciprocalRank(["a", "b", "c", "d"], relevant, 10)).toBe(1 / 2);
    expect(reciprocalRank(["a", "c", "b"], relevant, 2)).toBe(0);
    expect(reciprocalRank([], relevant, 10)).toBe(0);
  });

  it("recall and precision at k", () => {
    expect(recallAt(["a", "b", "c", "d"], relevant, 2)).toBe(1 / 2);
    expect(recallAt(["d", "b"], relevant, 10)).toBe(1);
    expect(precisionAt(["a", "b", "c", "d"], relevant, 4)).toBe(1 / 2);
    // A short answer's missing positions are misses.
    expect(precisionAt(["b"], relevant, 10)).toBe(1 / 10);
  });

  it("nDCG is 1 for an ideal ranking and discounts late hits by log2", () => {
    expect(ndcgAt(["b", "d", "a"], relevant, 10)).toBeCloseTo(1, 12);
    const ideal = 1 + 1 / Math.log2(3);
    expect(ndcgAt(["a", "b", "c", "d"], relevant, 10)).toBeCloseTo((1 / Math.log2(3) + 1 / Math.log2(5)) / ideal, 12);
    // The ideal DCG is capped at k relevant ids.
    expect(ndcgAt(["b"], new Set(["b", "x", "y"]), 1)).toBe(1);
    expect(ndcgAt(["a"], new Set<string>(), 10)).toBe(0);
  });

  it("topIds returns the k best, ties in index order", () => {
    const ids = ["a", "b", "c", "d", "e"];
    expect(topIds([0.1, 0.9, 0.5, 0.9, 0.2], ids, 3)).toEqual(["b", "d", "c"]);
    expect(topIds([1, 1, 1], ids, 2)).toEqual(["a", "b"]);
    expect(topIds([3, 1], ids, 5)).toEqual(["a", "b"]);
  });
});
