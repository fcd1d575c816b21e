/**
 * A search's filter as the index side uses it: parsed once per request (parseFilter against the
 * index's declared fields; a FilterError is the client's 400), with its canonical text, which keys
 * the per-segment bitmap cache. Then per segment: the bitmap of its live matching rows (compiled
 * once per (segment, filter) and cached; dead rows removed per search, since they depend on the
 * tail), and for the tail, matchesFilter over each live document's declared fields.
 */
import { canonicalFilter, type Filter, parseFilter } from "../../../shared/filter/filter.ts";
import type { FieldSchema } from "../../../shared/filter/schema.ts";
import type { DeletionBitmap } from "../../../shared/index/deletion-bitmap.ts";
import type { DecodedShard } from "../../../shared/index/format.ts";
import { compileFilter } from "./compile.ts";
import type { FilterPlan, PlanOptions } from "./plan.ts";
import { removeDeletedRows, type RowBitmap } from "./row-bitmap.ts";
import { segmentFilterColumns } from "./segment-columns.ts";

export interface SearchFilter {
  filter: Filter;
  /** canonicalFilter(filter) plus the schema: equal keys compile to equal bitmaps. */
  key: string;
  fields: FieldSchema;
  /**
   * Internal (benchmarks and tests, never the public API): run this plan on every segment instead
   * of choosing, and/or the planner's switch points.
   */
  forcePlan?: FilterPlan;
  planOptions?: Omit<PlanOptions, "entryPoints">;
}

/** Parses a request's `filter` against its `filterFields` (absent: no field is declared). Throws FilterError. */
export function prepareSearchFilter(input: unknown, fields: FieldSchema | undefined): SearchFilter {
  const schema = fields ?? {};
  const filter = parseFilter(input, schema);
  return { filter, key: `${canonicalFilter(filter)}\u0000${JSON.stringify(Object.entries(schema).sort(([a], [b]) => (a < b ? -1 : 1)))}`, fields: schema };
}

/** Compiled bitmaps kept per segment: a dashboard's handful of filters stay hot, a scan of many cannot grow memory. */
export const FILTER_BITMAPS_PER_SEGMENT = 16;

const compiled = new WeakMap<DecodedShard, Map<string, RowBitmap>>();

/** Bytes of the compiled bitmaps cached for a segment: counted in its version's memory (LoadedIndex.memory). */
export function filterBitmapBytes(shard: DecodedShard): number {
  let bytes = 0;
  for (const bitmap of compiled.get(shard)?.values() ?? []) bytes += bitmap.words.byteLength;
  return bytes;
}

/** The segment's rows matching the filter, ignoring deletions (cached; the caller must not change it). */
export function matchingRows(shard: DecodedShard, filter: SearchFilter, label?: string): RowBitmap {
  let cache = compiled.get(shard);
  if (!cache) {
    cache = new Map();
    compiled.set(shard, cache);
  }
  const hit = cache.get(filter.key);
  if (hit) {
    // Most recently used last.
    cache.delete(filter.key);
    cache.set(filter.key, hit);
    return hit;
  }
  const bitmap = compileFilter(filter.filter, segmentFilterColumns(shard, filter.fields, label));
  cache.set(filter.key, bitmap);
  for (const oldest of cache.keys()) {
    if (cache.size <= FILTER_BITMAPS_PER_SEGMENT) break;
    cache.delete(oldest);
  }
  return bitmap;
}

/** The segment's LIVE matching rows for one search: a fresh bitmap without the dead rows. */
export function liveMatchingRows(shard: DecodedShard, dead: DeletionBitmap | undefined, filter: SearchFilter, label?: string): RowBitmap {
  const matching = matchingRows(shard, filter, label);
  const live: RowBitmap = { rows: matching.rows, words: matching.words.slice() };
  if (dead) removeDeletedRows(live, dead.bits);
  return live;
}
