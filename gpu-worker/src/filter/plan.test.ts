import { describe, expect, it } from "vitest";
import { seededRandom } from "../../../shared/random.ts";
import { choosePlan, FILTER_PLAN_DEFAULTS, filteredEntryRows } from "./plan.ts";
import {
  bitmapRows,
  complementInPlace,
  countRows,
  emptyBitmap,
  fullBitmap,
  hasRow,
  prefixCounts,
  rankOf,
  removeDeletedRows,
  removeRowsWhere,
  type RowBitmap,
  selectRows,
} from "./row-bitmap.ts";

function bitmapOf(rows: number, set: Iterable<number>): RowBitmap {
  const b = emptyBitmap(rows);
  for (const r of set) b.words[r >>> 5] |= 1 << (r & 31);
  return b;
}

describe("choosePlan switch points", () => {
  it("defaults: up to 8,192 rows or 2% of the shard is exhaustive", () => {
    expect(FILTER_PLAN_DEFAULTS).toEqual({ exhaustiveMaxRows: 8192, exhaustiveMaxFraction: 0.02 });
    expect(choosePlan(0, 100_000)).toBe("filtered-exhaustive");
    expect(choosePlan(8192, 100_000)).toBe("filtered-exhaustive");
    expect(choosePlan(8193, 100_000)).toBe("filtered-walk");
    expect(choosePlan(20_000, 1_000_000)).toBe("filtered-exhaustive");
    expect(choosePlan(20_001, 1_000_000)).toBe("filtered-walk");
    expect(choosePlan(1_000_000, 1_000_000)).toBe("filtered-walk");
    // A small shard is always scored exhaustively.
    expect(choosePlan(8000, 8000)).toBe("filtered-exhaustive");
  });

  it("at or below the walk's entry set, exhaustive", () => {
    expect(choosePlan(10_000, 100_000, { entryPoints: 10_000 })).toBe("filtered-exhaustive");
    expect(choosePlan(10_001, 100_000, { entryPoints: 10_000 })).toBe("filtered-walk");
  });

  it("overrides", () => {
    expect(choosePlan(100, 100_000, { exhaustiveMaxRows: 99, exhaustiveMaxFraction: 0 })).toBe("filtered-walk");
    expect(choosePlan(99, 100_000, { exhaustiveMaxRows: 99, exhaustiveMaxFraction: 0 })).toBe("filtered-exhaustive");
    expect(choosePlan(50_000, 100_000, { exhaustiveMaxFraction: 0.5 })).toBe("filtered-exhaustive");
  });

  it("refuses impossible counts", () => {
    expect(() => choosePlan(11, 10)).toThrow("choosePlan: need integers 0 <= matches <= rows, got 11 of 10");
    expect(() => choosePlan(-1, 10)).toThrow(RangeError);
    expect(() => choosePlan(1.5, 10)).toThrow(RangeError);
  });
});

describe("row bitmaps", () => {
  it("complement stays within the rows; full, count, rows", () => {
    for (const rows of [0, 1, 31, 32, 33, 64, 65, 100]) {
      const b = emptyBitmap(rows);
      complementInPlace(b);
      expect(countRows(b)).toBe(rows);
      expect(Array.from(b.words)).toEqual(Array.from(fullBitmap(rows).words));
      expect(Array.from(bitmapRows(b))).toEqual(Array.from({ length: rows }, (_, i) => i));
    }
  });

  it("removes rows a deletion bitmap marks (its byte layout)", () => {
    const b = fullBitmap(20);
    const deleted = new Uint8Array(3);
    for (const r of [0, 9, 19]) deleted[r >> 3] |= 1 << (r & 7);
    removeDeletedRows(b, deleted);
    expect(countRows(b)).toBe(17);
    expect([0, 9, 19].map((r) => hasRow(b, r))).toEqual([false, false, false]);
    expect(hasRow(b, 18)).toBe(true);
  });

  it("removes rows a predicate marks dead, visiting only set rows", () => {
    const b = bitmapOf(100, [3, 40, 41, 99]);
    const asked: number[] = [];
    expect(removeRowsWhere(b, (r) => (asked.push(r), r % 2 === 1))).toBe(3);
    expect(asked).toEqual([3, 40, 41, 99]);
    expect(Array.from(bitmapRows(b))).toEqual([40]);
  });

  it("rank and select agree with the row list", () => {
    const rand = seededRandom(3);
    const rows = 1000;
    const set = [...new Set(Array.from({ length: 300 }, () => Math.floor(rand() * rows)))].sort((a, b) => a - b);
    const b = bitmapOf(rows, set);
    const prefix = prefixCounts(b);
    set.forEach((row, rank) => expect(rankOf(b, prefix, row)).toBe(rank));
    expect(Array.from(selectRows(b, prefix, set.map((_, i) => i)))).toEqual(set);
  });
});

describe("filteredEntryRows", () => {
  const rows = 10_000;
  const rand = seededRandom(9);
  const matching = bitmapOf(rows, Array.from({ length: 2000 }, () => Math.floor(rand() * rows)));
  const total = countRows(matching);

  it("draws distinct matching rows only, reproducibly per seed", () => {
    const a = filteredEntryRows(matching, { count: 500, seed: 7 });
    expect(a.length).toBe(500);
    expect(new Set(a).size).toBe(500);
    for (const r of a) expect(hasRow(matching, r)).toBe(true);
    expect(Array.from(filteredEntryRows(matching, { count: 500, seed: 7 }))).toEqual(Array.from(a));
    expect(Array.from(filteredEntryRows(matching, { count: 500, seed: 8 }))).not.toEqual(Array.from(a));
  });

  it("puts matching preferred rows first and never repeats them", () => {
    const matchingRows = bitmapRows(matching);
    const nonMatching = Array.from({ length: rows }, (_, i) => i).find((r) => !hasRow(matching, r))!;
    const preferred = Uint32Array.of(matchingRows[5]!, nonMatching, matchingRows[1]!, matchingRows[5]!, rows + 5);
    const out = filteredEntryRows(matching, { count: 100, seed: 1, preferred });
    expect(Array.from(out.subarray(0, 2))).toEqual([matchingRows[5], matchingRows[1]]);
    expect(new Set(out).size).toBe(100);
    expect(out.includes(nonMatching)).toBe(false);
  });

  it("caps at the matches and covers them all; none for an empty bitmap", () => {
    expect(Array.from(filteredEntryRows(matching, { count: total + 10, seed: 1 }))).toEqual(Array.from(bitmapRows(matching)));
    expect(filteredEntryRows(emptyBitmap(100), { count: 10, seed: 1 }).length).toBe(0);
    // Most of the matches: the selection-sampling branch.
    const most = filteredEntryRows(matching, { count: total - 3, seed: 2 });
    expect(new Set(most).size).toBe(total - 3);
  });

  it("is roughly uniform over the matching rows", () => {
    const b = bitmapOf(1000, Array.from({ length: 100 }, (_, i) => i * 10));
    const hits = new Map<number, number>();
    for (let seed = 0; seed < 400; seed++) for (const r of filteredEntryRows(b, { count: 10, seed })) hits.set(r, (hits.get(r) ?? 0) + 1);
    expect(hits.size).toBe(100);
    // Each row expects 40 draws.
    for (const n of hits.values()) expect(n).toBeGreaterThan(15);
  });

  it("refuses bad arguments", () => {
    expect(() => filteredEntryRows(matching, { count: -1, seed: 1 })).toThrow(RangeError);
    expect(() => filteredEntryRows(matching, { count: 1, seed: 2 ** 32 })).toThrow(RangeError);
  });
});
