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
  /** Rows to skip entirely (deleted or replaced documents): never scored, never returned. */
  isDead?: (row: number) => boolean;
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
  const { isDead } = options;
  let docsScored = 0;
  for (let start = 0; start < rowCount; ) {
    options.signal?.throwIfAborted();
    const first = start;
    // A fresh array per call: a scorer may transfer (detach) it to an inference thread.
    let batch = new Uint32Array(Math.min(batchSize, rowCount - start));
    let count = 0;
    for (; start < rowCount && count < batch.length; start++) if (!isDead?.(start)) batch[count++] = start;
    if (count === 0) continue;
    if (count < batch.length) batch = batch.slice(0, count);
    // With dead rows skipped the batch is not a plain range: keep its rows, since the scorer may detach it.
    const rows = isDead ? batch.slice() : undefined;
    const scores = await scorer.scoreRows(batch);
    checkScoreCount(scores, count);
    for (let i = 0; i < count; i++) top.push(rows ? rows[i]! : first + i, scores[i]!);
    docsScored += count;
  }
  return { hits: top.sorted(options.shard ?? 0), stats: { docsScored, ms: performance.now() - started } };
}

/** A scorer that returns the wrong number of scores would silently misattribute them. */
export function checkScoreCount(scores: Float32Array, expected: number): void {
  if (scores.length !== expected) throw new Error(`scorer returned ${scores.length} scores for ${expected} rows`);
}
