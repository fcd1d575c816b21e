/**
 * The scoring abstraction the search algorithms run on: one q-net over the rows of one shard.
 * The runtime implements it with the ONNX scorer graph (batched, fp16 embeddings); tests and
 * benchmarks use the dependency-free evaluator below, so the algorithms run without onnxruntime.
 */
import { scoreQNet } from "../../../shared/qnet/evaluate.ts";
import type { QNet } from "../../../shared/qnet/types.ts";

/**
 * Rows per q-net scorer call, for every scorer (ONNX and evaluator) and search: large enough that
 * a call's fixed cost disappears, small enough to bound the scorer graph's activation memory.
 */
export const DEFAULT_SCORE_BATCH_ROWS = 16_384;

export interface RowScorer {
  /** Scores the given local rows (any order, no duplicates needed); result[i] belongs to rows[i]. */
  scoreRows(rows: Uint32Array): Promise<Float32Array>;
}

/**
 * scoreQNet scores n < 4 rows on a different code path (bias added first instead of last), which can
 * change the float32 rounding of a score. Padding small batches to this many rows keeps every row's
 * score independent of the batch it arrives in, so graph search and exhaustive search agree exactly.
 */
const EVALUATOR_MIN_BATCH = 4;

/** A RowScorer over a row-major Float32Array of embeddings, using the CPU evaluator. */
export function evaluatorRowScorer(qnet: QNet, embeddings: Float32Array, dim: number): RowScorer {
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`evaluatorRowScorer: dim must be a positive integer, got ${dim}`);
  if (embeddings.length % dim !== 0) {
    throw new RangeError(`evaluatorRowScorer: ${embeddings.length} values is not a whole number of ${dim}-wide rows`);
  }
  if (qnet.dims[0] !== dim) throw new RangeError(`evaluatorRowScorer: the q-net expects ${qnet.dims[0]}-d inputs, embeddings are ${dim}-d`);
  const rowCount = embeddings.length / dim;
  return {
    async scoreRows(rows: Uint32Array): Promise<Float32Array> {
      const n = rows.length;
      if (n === 0) return new Float32Array(0);
      const padded = Math.max(n, EVALUATOR_MIN_BATCH);
      const gathered = new Float32Array(padded * dim);
      for (let i = 0; i < padded; i++) {
        const row = rows[Math.min(i, n - 1)];
        if (row >= rowCount) throw new RangeError(`row ${row} is out of range for ${rowCount} rows`);
        gathered.set(embeddings.subarray(row * dim, (row + 1) * dim), i * dim);
      }
      const scores = scoreQNet(qnet, gathered);
      return n === padded ? scores : scores.slice(0, n);
    },
  };
}
