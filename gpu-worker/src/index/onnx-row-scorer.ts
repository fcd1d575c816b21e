/**
 * The production RowScorer: one shard's embeddings (zero-copy views into the shard bytes, float16
 * bits or float32) scored by one q-net that the runtime has prepared on the inference thread.
 *
 * Two paths:
 * - Shared embeddings (every segment opened through the ShardCache: its bytes live in a
 *   SharedArrayBuffer, shared-embeddings.ts): a call sends only the row ids; the inference thread,
 *   which was given the embeddings once per loaded shard, gathers the rows. Nothing of size
 *   rows × dim is touched on the event loop.
 * - Any other array (a living index's tail, which is small and rebuilt per head; test q-nets
 *   without scoreRows): the requested rows are gathered here into a FRESH array, because
 *   PreparedQNet.score moves the array's buffer to the inference thread and the source's own
 *   buffer must never travel.
 * Large row sets (an exhaustive pass, a wide first frontier) go in batches, which bounds the scorer
 * graph's activation memory; the signal is checked before every batch, so a cancelled search stops
 * between batches and between graph-search iterations.
 */
import type { PreparedQNet } from "../model/runtime/runtime.ts";
import { sharedEmbeddingsOf } from "../model/runtime/shared-embeddings.ts";
import { DEFAULT_SCORE_BATCH_ROWS, type RowScorer } from "../search/row-scorer.ts";

export interface OnnxRowScorerOptions {
  /** Rows per scorer call (default DEFAULT_SCORE_BATCH_ROWS). */
  batchRows?: number;
  /** Checked before each batch: an aborted search throws the signal's reason. */
  signal?: AbortSignal;
}

/** What search needs of a q-net: `score`; `scoreRows` for shared shard rows; `gradient` for the proxy walk's seeds. */
export type ScoringQNet = Pick<PreparedQNet, "score"> & Partial<Pick<PreparedQNet, "scoreRows" | "gradient" | "dims">>;

export function onnxRowScorer(
  qnet: ScoringQNet,
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
  const shared = qnet.scoreRows ? sharedEmbeddingsOf(embeddings) : undefined;

  const checkRows = (rows: Uint32Array, start: number, end: number): void => {
    for (let i = start; i < end; i++) {
      if (rows[i]! >= rowCount) throw new RangeError(`row ${rows[i]} is out of range for a shard of ${rowCount} rows`);
    }
  };

  /** Scores rows[start, end): by id for shared embeddings, else gathered into a fresh array (its buffer may be moved away by score()). */
  const scoreBatch = async (rows: Uint32Array, start: number, end: number): Promise<Float32Array> => {
    if (shared) {
      checkRows(rows, start, end);
      return checked(await qnet.scoreRows!(shared, rows.subarray(start, end)), end - start);
    }
    return checked(await qnet.score(gather(rows, start, end)), end - start);
  };

  /** A fresh row-major copy of rows[start, end). */
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
        return n === 0 ? new Float32Array(0) : scoreBatch(rows, 0, n);
      }
      const scores = new Float32Array(n);
      for (let start = 0; start < n; start += batchRows) {
        signal?.throwIfAborted();
        const end = Math.min(n, start + batchRows);
        scores.set(await scoreBatch(rows, start, end), start);
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
