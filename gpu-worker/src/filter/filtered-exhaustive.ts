/**
 * The "filtered-exhaustive" plan: score exactly the given rows (a shard's live matching rows,
 * `bitmapRows(matches)`) in scorer batches and keep the top k. With the filter's bitmap this is
 * brute force over exactly the matching live documents, which is also what exact mode with a
 * filter must return. Ties and NaN are handled by TopK as in exhaustiveSearch, so for the same
 * rows both give the same hits.
 */
import { checkScoreCount, EXHAUSTIVE_DEFAULTS, type ExhaustiveStats, type SearchResult } from "../search/exhaustive.ts";
import type { RowScorer } from "../search/row-scorer.ts";
import { TopK } from "../search/topk.ts";
import { checkInteger } from "../search/validate.ts";

export interface RowListSearchOptions {
  k?: number;
  batchSize?: number;
  /** Tags the hits; defaults to 0. */
  shard?: number;
  /** Checked before each batch: an aborted search throws the signal's reason. */
  signal?: AbortSignal;
}

export async function scoreRowList(scorer: RowScorer, rows: Uint32Array, options: RowListSearchOptions = {}): Promise<SearchResult<ExhaustiveStats>> {
  const started = performance.now();
  const k = checkInteger("k", options.k ?? EXHAUSTIVE_DEFAULTS.k, 1);
  const batchSize = checkInteger("batchSize", options.batchSize ?? EXHAUSTIVE_DEFAULTS.batchSize, 1);
  const top = new TopK(Math.min(k, rows.length));
  for (let start = 0; start < rows.length; start += batchSize) {
    options.signal?.throwIfAborted();
    // A copy per call: a scorer may transfer (detach) its input to an inference thread.
    const batch = rows.slice(start, Math.min(rows.length, start + batchSize));
    const scores = await scorer.scoreRows(batch);
    checkScoreCount(scores, batch.length);
    for (let i = 0; i < scores.length; i++) top.push(rows[start + i]!, scores[i]!);
  }
  return { hits: top.sorted(options.shard ?? 0), stats: { docsScored: rows.length, ms: performance.now() - started } };
}
