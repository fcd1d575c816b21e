/**
 * Exhaustive search: score every row of a shard and keep the top k. The reference that graph search
 * is measured against, and the right choice for small shards, where walking a graph saves nothing.
 */
import { SEARCH_DEFAULTS } from "../../../shared/api/worker-api.ts";
import { DEFAULT_SCORE_BATCH_ROWS, type RowScorer } from "./row-scorer.ts";
import { type RowHit, TopK } from "./topk.ts";
import { checkInteger, checkRowCount } from "./validate.ts";

export const EXHAUSTIVE_DEFAULTS = {
  k: SEARCH_DEFAULTS.k,
  batchSize: DEFAULT_SCORE_BATCH_ROWS,
} as const;

export interface ExhaustiveOptions {
  k?: number;
  batchSize?: number;
  /** Tags the hits; defaults to 0. */
  shard?: number;
  /** Checked before each batch: an aborted search throws the signal's reason. */
  signal?: AbortSignal;
}

export interface ExhaustiveStats {
  docsScored: number;
  ms: number;
}

export interface SearchResult<Stats> {
  hits: RowHit[];
  stats: Stats;
}

export async function exhaustiveSearch(
  scorer: RowScorer,
  rowCount: number,
  options: ExhaustiveOptions = {},
): Promise<SearchResult<ExhaustiveStats>> {
  const started = performance.now();
  checkRowCount(rowCount);
  const k = checkInteger("k", options.k ?? EXHAUSTIVE_DEFAULTS.k, 1);
  const batchSize = checkInteger("batchSize", options.batchSize ?? EXHAUSTIVE_DEFAULTS.batchSize, 1);
  const top = new TopK(Math.min(k, rowCount));
  for (let start = 0; start < rowCount; start += batchSize) {
    options.signal?.throwIfAborted();
    const count = Math.min(batchSize, rowCount - start);
    // A fresh array per call: a scorer may transfer (detach) it to an inference thread.
    const batch = new Uint32Array(count);
    for (let i = 0; i < count; i++) batch[i] = start + i;
    const scores = await scorer.scoreRows(batch);
    checkScoreCount(scores, count);
    for (let i = 0; i < count; i++) top.push(start + i, scores[i]);
  }
  return { hits: top.sorted(options.shard ?? 0), stats: { docsScored: rowCount, ms: performance.now() - started } };
}

/** A scorer that returns the wrong number of scores would silently misattribute them. */
export function checkScoreCount(scores: Float32Array, expected: number): void {
  if (scores.length !== expected) throw new Error(`scorer returned ${scores.length} scores for ${expected} rows`);
}
