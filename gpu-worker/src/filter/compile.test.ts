import { describe, expect, it } from "vitest";
import { type Filter, matchesFilter, parseFilter } from "../../../shared/filter/filter.ts";
import type { FieldSchema } from "../../../shared/filter/schema.ts";
import { buildFilterColumns, decodeFilterColumns, encodeFilterColumns } from "../../../shared/index/filter-columns.ts";
import { seededRandom } from "../../../shared/random.ts";
import { randomDocument, randomFilter, randomSchema } from "../../../test/support/random-filters.ts";
import { compileFilter, FilterCompileError } from "./compile.ts";
import { bitmapRows, countRows, hasRow } from "./row-bitmap.ts";

const schema: FieldSchema = { section: "string", year: "number", tags: "string[]", free: "boolean" };
const docs = [
  { section: "news", year: 2020, tags: ["ml", "ir"], free: true },
  { section: null, year: 0, tags: [], free: false },
  {},
  { section: "blog", year: 1999.5, tags: ["ir"] },
  { section: "news", free: true },
];
const columns = buildFilterColumns(schema, docs);
const rowsOf = (f: unknown) => Array.from(bitmapRows(compileFilter(parseFilter(f, schema), columns)));

describe("compileFilter", () => {
  it("each op, with the absent-field rule", () => {
    expect(rowsOf({ field: "section", op: "eq", value: "news" })).toEqual([0, 4]);
    expect(rowsOf({ field: "section", op: "ne", value: "news" })).toEqual([1, 2, 3]);
    expect(rowsOf({ field: "section", op: "eq", value: "nowhere" })).toEqual([]);
    expect(rowsOf({ field: "section", op: "ne", value: "nowhere" })).toEqual([0, 1, 2, 3, 4]);
    expect(rowsOf({ field: "section", op: "in", value: ["blog", "news", "x"] })).toEqual([0, 3, 4]);
    expect(rowsOf({ field: "section", op: "nin", value: ["blog"] })).toEqual([0, 1, 2, 4]);
    expect(rowsOf({ field: "year", op: "gt", value: 1999.5 })).toEqual([0]);
    expect(rowsOf({ field: "year", op: "gte", value: 1999.5 })).toEqual([0, 3]);
    expect(rowsOf({ field: "year", op: "lt", value: 1999.5 })).toEqual([1]);
    expect(rowsOf({ field: "year", op: "lte", value: 1e9 })).toEqual([0, 1, 3]);
    expect(rowsOf({ field: "year", op: "eq", value: -0 })).toEqual([1]);
    expect(rowsOf({ field: "year", op: "in", value: [] })).toEqual([]);
    expect(rowsOf({ field: "year", op: "nin", value: [] })).toEqual([0, 1, 2, 3, 4]);
    expect(rowsOf({ field: "tags", op: "contains", value: "ir" })).toEqual([0, 3]);
    expect(rowsOf({ field: "tags", op: "in", value: ["ml", "zz"] })).toEqual([0]);
    expect(rowsOf({ field: "tags", op: "nin", value: ["ml"] })).toEqual([1, 2, 3, 4]);
    expect(rowsOf({ field: "tags", op: "exists", value: true })).toEqual([0, 1, 3]);
    expect(rowsOf({ field: "free", op: "eq", value: false })).toEqual([1]);
    expect(rowsOf({ field: "free", op: "ne", value: false })).toEqual([0, 2, 3, 4]);
    expect(rowsOf({ field: "free", op: "in", value: [true, false] })).toEqual([0, 1, 4]);
    expect(rowsOf({ field: "free", op: "exists", value: false })).toEqual([2, 3]);
    expect(rowsOf({ not: { field: "year", op: "gt", value: 2000 } })).toEqual([1, 2, 3, 4]);
    expect(rowsOf({ and: [{ field: "section", op: "eq", value: "news" }, { field: "year", op: "exists", value: false }] })).toEqual([4]);
    expect(rowsOf({ or: [{ field: "free", op: "eq", value: false }, { field: "tags", op: "contains", value: "ml" }] })).toEqual([0, 1]);
  });

  it("a field without a column, or of another type, is a compile error", () => {
    const other = buildFilterColumns({ year: "string" }, []);
    expect(() => compileFilter({ field: "section", op: "eq", value: "x" }, other)).toThrow(FilterCompileError);
    expect(() => compileFilter({ field: "year", op: "gt", value: 1 }, other)).toThrow(`op "gt" does not apply to field "year" of type string`);
  });

  it("property: random schemas, documents and filters: the bitmap is matchesFilter on every row", () => {
    const rand = seededRandom(2026);
    let checked = 0;
    let nonTrivial = 0;
    for (let round = 0; round < 150; round++) {
      const s = randomSchema(rand);
      const rows = [0, 1, 31, 32, 33, 64, 100, 257][round % 8]!;
      const documents = Array.from({ length: rows }, () => randomDocument(s, rand));
      // Through the bytes, as the worker loads them.
      const set = decodeFilterColumns(encodeFilterColumns(buildFilterColumns(s, documents)), { expectedRows: rows, expectedSchema: s });
      for (let f = 0; f < 12; f++) {
        const filter: Filter = parseFilter(randomFilter(s, rand, 8), s);
        const bitmap = compileFilter(filter, set);
        expect(bitmap.words.length).toBe(Math.ceil(rows / 64) * 2);
        let expected = 0;
        for (let r = 0; r < rows; r++) {
          const want = matchesFilter(filter, documents[r]!);
          if (hasRow(bitmap, r) !== want) throw new Error(`row ${r} of ${JSON.stringify(documents[r])}: ${JSON.stringify(filter)} should be ${want}`);
          if (want) expected++;
          checked++;
        }
        // No bits past the last row (complements are masked).
        expect(countRows(bitmap)).toBe(expected);
        if (expected > 0 && expected < rows) nonTrivial++;
      }
    }
    expect(checked).toBeGreaterThan(50_000);
    // The generator must produce selective filters, not only all-or-nothing ones.
    expect(nonTrivial).toBeGreaterThan(300);
  });
});
