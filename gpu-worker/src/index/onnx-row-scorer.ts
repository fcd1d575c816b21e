/**
 * The production RowScorer: one shard's embeddings (zero-copy views into the shard bytes, float16
 * bits or float32) scored by one q-net that the runtime has prepared on the inference thread.
 *
 * Each call gathers the requested rows into a FRESH array, because PreparedQNet.score moves the
 * array's buffer to the inference thread: the shard's own buffer must never travel. Large row sets
 * (an exhaustive pass, a wide first frontier) go in batches, which bounds the scorer graph's
 * activation memory; the signal is checked before every batch, so a cancelled search stops between
 * batches and between graph-search iterations.
 */
import type { PreparedQNet } from "../model/runtime/runtime.ts";
import { DEFAULT_SCORE_BATCH_ROWS, type RowScorer } from "../search/row-scorer.ts";

export interface OnnxRowScorerOptions {
  /** Rows per scorer call (default DEFAULT_SCORE_BATCH_ROWS). */
  batchRows?: number;
  /** Checked before each batch: an aborted search throws the signal's reason. */
  signal?: AbortSignal;
}

export function onnxRowScorer(
  qnet: Pick<PreparedQNet, "score">,
  embeddings: Float32Array | Uint16Array,
  dim: number,
  options: OnnxRowScorerOptions = {},
): RowScorer {
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`onnxRowScorer: dim must be a positive integer, got ${dim}`);
  if (embeddings.length % dim !== 0) {
    throw new RangeError(`onnxRowScorer: ${embeddings.length} values is not a whole number of ${dim}-wide rows`);
  }
  const batchRows = options.batchRows ?? DEFAULT_SCORE_BATCH_ROWS;
  if (!Number.isInteger(batchRows) || batchRows < 1) throw new RangeError(`onnxRowScorer: batchRows must be a positive integer, got ${batchRows}`);
  const rowCount = embeddings.length / dim;
  const { signal } = options;

  /** A fresh row-major copy of rows[start, end): its buffer may be moved away by score(). */
  const gather = (rows: Uint32Array, start: number, end: number): Float32Array | Uint16Array => {
    const out = embeddings instanceof Uint16Array ? new Uint16Array((end - start) * dim) : new Float32Array((end - start) * dim);
    for (let i = start; i < end; i++) {
      const row = rows[i]!;
      if (row >= rowCount) throw new RangeError(`row ${row} is out of range for a shard of ${rowCount} rows`);
      out.set(embeddings.subarray(row * dim, (row + 1) * dim), (i - start) * dim);
    }
    return out;
  };

  return {
    async scoreRows(rows: Uint32Array): Promise<Float32Array> {
      const n = rows.length;
      if (n <= batchRows) {
        signal?.throwIfAborted();
        return n === 0 ? new Float32Array(0) : checked(await qnet.score(gather(rows, 0, n)), n);
      }
      const scores = new Float32Array(n);
      for (let start = 0; start < n; start += batchRows) {
        signal?.throwIfAborted();
        const end = Math.min(n, start + batchRows);
        scores.set(checked(await qnet.score(gather(rows, start, end)), end - start), start);
      }
      return scores;
    },
  };
}

/** A wrong score count would silently misattribute scores to rows. */
function checked(scores: Float32Array, expected: number): Float32Array {
  if (scores.length !== expected) throw new Error(`q-net scorer returned ${scores.length} scores for ${expected} rows`);
  return scores;
}
