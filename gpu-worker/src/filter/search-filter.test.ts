import { describe, expect, it } from "vitest";
import { FilterError, matchesFilter } from "../../../shared/filter/filter.ts";
import type { FieldSchema } from "../../../shared/filter/schema.ts";
import { DeletionBitmap } from "../../../shared/index/deletion-bitmap.ts";
import { buildFilterColumns, encodeFilterColumns } from "../../../shared/index/filter-columns.ts";
import { decodeShard, encodeShard } from "../../../shared/index/format.ts";
import { bitmapRows } from "./row-bitmap.ts";
import { FILTER_BITMAPS_PER_SEGMENT, filterBitmapBytes, liveMatchingRows, matchingRows, prepareSearchFilter } from "./search-filter.ts";
import { declaredFieldValues, segmentFilterColumns } from "./segment-columns.ts";

const ROWS = 40;
const docs = Array.from({ length: ROWS }, (_, i) => ({ text: `t${i}`, n: i, s: i % 2 === 0 ? "even" : "odd", wrong: i }));

/** A shard of ROWS rows whose columns were written for `written` (a line graph, 2-d embeddings). */
function shard(written: FieldSchema | undefined) {
  const offsets = Uint32Array.from({ length: ROWS + 1 }, (_, i) => i);
  const neighbors = Uint32Array.from({ length: ROWS }, (_, i) => (i + 1) % ROWS);
  const bytes = encodeShard({
    ids: docs.map((_, i) => `d${i}`),
    fields: docs.map((d) => ({ text: d.text })),
    embeddings: new Float32Array(ROWS * 2),
    dim: 2,
    dtype: "float32",
    graph: { offsets, neighbors, degree: 1 },
    ...(written ? { filterColumns: encodeFilterColumns(buildFilterColumns(written, docs.map((d) => declaredFieldValues(written, d)))) } : {}),
  });
  return decodeShard(bytes);
}

describe("search filters per segment", () => {
  const schema: FieldSchema = { n: "number", s: "string", wrong: "string" };

  it("parses against the declared fields: an undeclared or mistyped field is a FilterError", () => {
    expect(() => prepareSearchFilter({ field: "x", op: "eq", value: 1 }, schema)).toThrow(FilterError);
    expect(() => prepareSearchFilter({ field: "n", op: "eq", value: "1" }, schema)).toThrow(/^filter\.value: /);
    expect(() => prepareSearchFilter({ field: "n", op: "eq", value: 1 }, undefined)).toThrow(FilterError);
    // Equivalent orderings share one key (and one cached bitmap).
    const a = prepareSearchFilter({ and: [{ field: "n", op: "lt", value: 5 }, { field: "s", op: "eq", value: "odd" }] }, schema);
    const b = prepareSearchFilter({ and: [{ field: "s", op: "eq", value: "odd" }, { field: "n", op: "lt", value: 5 }] }, schema);
    expect(a.key).toBe(b.key);
  });

  it("a segment without a column for a declared field (or with one of another type) has it absent in every row", () => {
    // Written with n and s only, and `wrong` as a number: the schema's `wrong` is a string.
    const s = shard({ n: "number", s: "string", wrong: "number" });
    const columns = segmentFilterColumns(s, { ...schema, missing: "boolean" });
    expect([...columns.columns.keys()].sort()).toEqual(["missing", "n", "s", "wrong"]);
    const f = prepareSearchFilter({ or: [{ field: "wrong", op: "exists", value: true }, { field: "missing", op: "eq", value: true }] }, { ...schema, missing: "boolean" });
    expect(bitmapRows(matchingRows(s, f))).toEqual(new Uint32Array(0));
    const none = shard(undefined);
    const ne = prepareSearchFilter({ field: "s", op: "ne", value: "odd" }, schema);
    // Absent everywhere: `ne` holds for every row (MongoDB's rule).
    expect(bitmapRows(matchingRows(none, ne)).length).toBe(ROWS);
  });

  it("matches the reference evaluator, removes dead rows per search, and keeps a bounded cache per segment", () => {
    const s = shard(schema);
    const f = prepareSearchFilter({ and: [{ field: "n", op: "gte", value: 10 }, { field: "s", op: "eq", value: "even" }] }, schema);
    const expected = docs.flatMap((d, i) => (matchesFilter(f.filter, declaredFieldValues(schema, d)) ? [i] : []));
    expect(Array.from(bitmapRows(matchingRows(s, f)))).toEqual(expected);
    const dead = new DeletionBitmap(ROWS);
    dead.add(10);
    dead.add(12);
    expect(Array.from(bitmapRows(liveMatchingRows(s, dead, f)))).toEqual(expected.filter((r) => r !== 10 && r !== 12));
    // The cached bitmap is not changed by a search's dead rows.
    expect(Array.from(bitmapRows(matchingRows(s, f)))).toEqual(expected);
    expect(matchingRows(s, f)).toBe(matchingRows(s, f));
    // Past the bound the least recently used bitmap is dropped (and compiled afresh on its next use).
    const first = matchingRows(s, f);
    for (let v = 0; v < FILTER_BITMAPS_PER_SEGMENT; v++) matchingRows(s, prepareSearchFilter({ field: "n", op: "eq", value: 100 + v }, schema));
    const again = matchingRows(s, f);
    expect(again).not.toBe(first);
    expect(again.words).toEqual(first.words);
  });

  it("reports the bytes of the bitmaps it caches per segment, so they count in the worker's memory budget", () => {
    const s = shard(schema);
    expect(filterBitmapBytes(s)).toBe(0);
    matchingRows(s, prepareSearchFilter({ field: "n", op: "lt", value: 7 }, schema));
    const one = filterBitmapBytes(s);
    expect(one).toBe(Math.ceil(ROWS / 32) * 4);
    matchingRows(s, prepareSearchFilter({ field: "n", op: "gt", value: 7 }, schema));
    expect(filterBitmapBytes(s)).toBe(2 * one);
  });
});
