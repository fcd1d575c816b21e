/**
 * The per-shard plan for a filtered search, chosen from the compiled bitmap's count of live matching
 * rows, and the filtered walk's entry set.
 *
 * - "filtered-exhaustive": score exactly the matching rows (recall 1). Chosen when they are few:
 *   at most `exhaustiveMaxRows`, or at most `exhaustiveMaxFraction` of the shard, or at most the
 *   walk's own entry set (`entryPoints`: the walk's first step alone would score every match, so
 *   it can only cost more).
 * - "filtered-walk": the graph walk, stepping through non-matching rows (scored and expanded, never
 *   offered to the top-k, like deleted rows), from an entry set drawn from matching rows only.
 * A graph walk starved of matches loses recall (its frontiers are mostly rows that cannot enter the
 * top-k), which is why the exhaustive side takes every shard where matches are rare.
 */
import { SEED_MAX } from "../../../shared/random.ts";
import { sampleUnmarked, seededRandom } from "../search/random.ts";
import { bitmapRows, countRows, hasRow, prefixCounts, rankOf, type RowBitmap, selectRows } from "./row-bitmap.ts";

export const FILTER_PLANS = ["filtered-walk", "filtered-exhaustive"] as const;
export type FilterPlan = (typeof FILTER_PLANS)[number];

/**
 * Defaults for the switch points, from bench/filters.bench.ts (bench/reports/filters.txt; 100k
 * docs, 768-d, 6-layer q-nets, 2 CPU cores): a walk costs about the rows it scores, and an
 * exhaustive plan exactly its matches, at the same cost per row. At the default search parameters
 * the walk scores ~12,500 rows (its 10,000-row entry set and a few expansions), so scoring every
 * match was faster up to 9,945 matches and slower from 19,857: the `entryPoints` term below puts
 * the switch at 10,000 there. With a small entry set (256) the walk still scores ~7,500 rows
 * (16 × 64 expansions) and its recall falls to 0.70-0.91 at 1-10% selectivity, so no walk is worth
 * it below 8,192 matches whatever the parameters. The 2% share is kept for larger shards
 * (not measured past 100k rows): there it trades a little latency for recall.
 */
export const FILTER_PLAN_DEFAULTS = {
  exhaustiveMaxRows: 8_192,
  exhaustiveMaxFraction: 0.02,
} as const;

export interface PlanOptions {
  exhaustiveMaxRows?: number;
  exhaustiveMaxFraction?: number;
  /** The walk's entryPoints: at or below it, the walk would score all matches in its first step. */
  entryPoints?: number;
}

/** The plan for a shard of `rows` rows of which `matches` are live and match the filter. */
export function choosePlan(matches: number, rows: number, options: PlanOptions = {}): FilterPlan {
  if (!Number.isInteger(matches) || !Number.isInteger(rows) || matches < 0 || rows < 0 || matches > rows) {
    throw new RangeError(`choosePlan: need integers 0 <= matches <= rows, got ${matches} of ${rows}`);
  }
  const maxRows = options.exhaustiveMaxRows ?? FILTER_PLAN_DEFAULTS.exhaustiveMaxRows;
  const maxFraction = options.exhaustiveMaxFraction ?? FILTER_PLAN_DEFAULTS.exhaustiveMaxFraction;
  const threshold = Math.max(maxRows, Math.floor(maxFraction * rows), options.entryPoints ?? 0);
  return matches <= threshold ? "filtered-exhaustive" : "filtered-walk";
}

export interface FilteredEntryOptions {
  /** How many entry rows (graph search's entryPoints); capped at the number of matches. */
  count: number;
  /** The search seed: the same seed and bitmap give the same rows. */
  seed: number;
  /** Build-time entry rows (the shard's k-means medoids): those that match come first. */
  preferred?: Uint32Array;
}

/**
 * Graph-search entry rows drawn from the matching rows only: the matching `preferred` rows first
 * (in their order), then distinct matching rows drawn uniformly with the seed (ascending), up to
 * `count`. Pass the result as graph search's `entryRows` with `entryPoints` = its length, so the
 * walk adds no random rows of its own. Costs O(words + count), whatever the selectivity.
 */
export function filteredEntryRows(matching: RowBitmap, options: FilteredEntryOptions): Uint32Array {
  const { seed } = options;
  if (!Number.isInteger(options.count) || options.count < 0) throw new RangeError(`filteredEntryRows: count must be a non-negative integer, got ${options.count}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > SEED_MAX) throw new RangeError(`filteredEntryRows: seed must be an integer in [0, ${SEED_MAX}], got ${seed}`);
  const total = countRows(matching);
  const count = Math.min(options.count, total);
  if (count === total) return bitmapRows(matching, total);
  const prefix = prefixCounts(matching);
  const taken = new Uint8Array(total);
  const first: number[] = [];
  for (const row of options.preferred ?? []) {
    if (first.length === count) break;
    if (row >= matching.rows || !hasRow(matching, row)) continue;
    const rank = rankOf(matching, prefix, row);
    if (taken[rank] !== 0) continue;
    taken[rank] = 1;
    first.push(row);
  }
  const ranks: number[] = [];
  sampleUnmarked(seededRandom(seed), total, taken, first.length, count - first.length, ranks);
  ranks.sort((a, b) => a - b);
  const drawn = selectRows(matching, prefix, ranks);
  const out = new Uint32Array(count);
  out.set(first, 0);
  out.set(drawn, first.length);
  return out;
}
