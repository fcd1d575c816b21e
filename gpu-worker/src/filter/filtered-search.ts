/**
 * One filtered search of one segment, given its live matching rows (search-filter.ts
 * liveMatchingRows): the plan (plan.ts choosePlan, or a forced one), then either exactly the
 * matching rows scored ("filtered-exhaustive", and exact mode) or the graph walk with every other
 * row treated as dead (walked through, never returned), entered from matching rows only: the
 * segment's matching k-means medoids first, then seeded random matching rows ("filtered-walk").
 * Shared by the worker (index/shard-search.ts) and bench/filters.bench.ts, so the benchmark
 * measures the code that serves.
 */
import { type SearchParams, VARIANT_DEFAULTS } from "../../../shared/api/worker-api.ts";
import { type GraphSearchProgress, graphSearch, type NeighborGraph } from "../search/graph-search.ts";
import type { RowScorer } from "../search/row-scorer.ts";
import type { RowHit } from "../search/topk.ts";
import { scoreRowList } from "./filtered-exhaustive.ts";
import { choosePlan, type FilterPlan, filteredEntryRows, type PlanOptions } from "./plan.ts";
import { bitmapRows, countRows, hasRow, type RowBitmap } from "./row-bitmap.ts";

export interface FilteredSegmentOptions {
  params: Pick<SearchParams, "k" | "mode" | "entryPoints" | "ncandidates" | "maxIter" | "earlyStop">;
  /** The segment's seed (shardSeed of the request's seed and the segment's position). */
  seed: number;
  /** The segment's build-time entry rows (k-means medoids); those that match enter first. */
  entryRows?: Uint32Array;
  /** Internal (benchmarks, tests): this plan instead of choosing one (exact mode is always exhaustive). */
  forcePlan?: FilterPlan;
  planOptions?: Omit<PlanOptions, "entryPoints">;
  /** Tags the hits. */
  shard?: number;
  batchSize?: number;
  signal?: AbortSignal;
  onIteration?: (iteration: number, hits: RowHit[]) => void;
}

export interface FilteredSegmentResult {
  hits: RowHit[];
  docsScored: number;
  iterations: number;
  plan: FilterPlan;
}

export async function searchFilteredSegment(
  scorer: RowScorer,
  graph: NeighborGraph,
  matching: RowBitmap,
  options: FilteredSegmentOptions,
): Promise<FilteredSegmentResult> {
  // The filtered walk is the published step whatever the variant (the shard's inner-product index
  // knows nothing of filters), so its parameters default to the published ones.
  const published = VARIANT_DEFAULTS.published;
  const params = {
    ...options.params,
    entryPoints: options.params.entryPoints ?? published.entryPoints,
    ncandidates: options.params.ncandidates ?? published.ncandidates,
    maxIter: options.params.maxIter ?? published.maxIter,
  };
  const matches = countRows(matching);
  const plan: FilterPlan =
    params.mode === "exact" ? "filtered-exhaustive" : (options.forcePlan ?? choosePlan(matches, matching.rows, { ...options.planOptions, entryPoints: params.entryPoints }));
  if (plan === "filtered-exhaustive" || matches === 0) {
    const result = await scoreRowList(scorer, bitmapRows(matching, matches), {
      k: params.k,
      ...(options.shard !== undefined ? { shard: options.shard } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    });
    options.onIteration?.(1, result.hits);
    return { hits: result.hits, docsScored: result.stats.docsScored, iterations: 1, plan };
  }
  const entryRows = filteredEntryRows(matching, { count: params.entryPoints, seed: options.seed, ...(options.entryRows ? { preferred: options.entryRows } : {}) });
  const onIteration = options.onIteration;
  const result = await graphSearch(scorer, graph, {
    k: params.k,
    entryPoints: entryRows.length,
    ncandidates: params.ncandidates,
    maxIter: params.maxIter,
    earlyStop: params.earlyStop,
    entryRows,
    seed: options.seed,
    ...(options.shard !== undefined ? { shard: options.shard } : {}),
    isDead: (row) => !hasRow(matching, row),
    ...(onIteration ? { onIteration: (p: GraphSearchProgress) => onIteration(p.iteration, p.topK) } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return { hits: result.hits, docsScored: result.stats.docsScored, iterations: result.stats.iterations, plan };
}
