/**
 * The proxy walk's second entry set for one shard (search/graph-search.ts, variant "proxy"): the
 * rows of largest inner product with the q-net's gradient at the best rows of the first frontier.
 *
 * Why the gradient: near a row x the q-net is, to first order, the inner product with ∇score(x)
 * (shared/qnet/gradient.ts), so the rows that rank highest by that inner product are where the
 * score rises fastest from the best row found so far; an inner-product index finds them for one
 * dot product each instead of one q-net evaluation. The gradient is computed on the inference
 * thread, where the query's q-net stays (PreparedQNet.gradient); only the row (dim values) and the
 * gradient cross.
 *
 * Several points spread the seeds: a q-net that prefers more than one region has a different
 * gradient at each (bench/reports/graph-search.txt compares 1 and 4 points).
 */
import type { DecodedShard } from "../../../shared/index/format.ts";
import { halfToFloat32Array } from "../../../shared/qnet/half.ts";
import type { RowHit } from "../search/topk.ts";

/** Rows of the first frontier the gradient is taken at; the seeds are shared out between them. */
export const PROXY_GRADIENT_POINTS = 4;

export interface InnerProductSearch {
  /** Rows by inner product with `vector`, best first, at most `count`. */
  search(vector: Float32Array, count: number): Uint32Array;
}

export interface GradientSource {
  gradient(at: Float32Array): Promise<Float32Array>;
}

/** A shard row as float32 (the shard stores fp16 bits or float32). */
export function shardRow(shard: Pick<DecodedShard, "embeddings" | "dim">, row: number): Float32Array {
  const { embeddings, dim } = shard;
  const view = embeddings.subarray(row * dim, (row + 1) * dim);
  return view instanceof Uint16Array ? halfToFloat32Array(view) : Float32Array.from(view);
}

/**
 * The `seedRows` callback for one shard: gradients at up to `points` of the best hits (local
 * rows), each asking the proxy index for its share of `count`, merged in order without repeats.
 * No hits (every first-frontier row dead): no seeds, and the walk goes on best-first.
 */
export function proxySeedRows(
  shard: Pick<DecodedShard, "embeddings" | "dim">,
  qnet: GradientSource,
  proxyIndex: () => Promise<InnerProductSearch>,
  points = PROXY_GRADIENT_POINTS,
): (best: readonly RowHit[], count: number) => Promise<Uint32Array> {
  return async (best, count) => {
    const at = best.slice(0, points);
    if (at.length === 0 || count === 0) return new Uint32Array(0);
    const [index, gradients] = await Promise.all([proxyIndex(), Promise.all(at.map((hit) => qnet.gradient(shardRow(shard, hit.row))))]);
    const share = Math.ceil(count / at.length);
    const seen = new Set<number>();
    const rows: number[] = [];
    for (const gradient of gradients) {
      for (const row of index.search(gradient, share)) {
        if (seen.has(row)) continue;
        seen.add(row);
        rows.push(row);
      }
    }
    return Uint32Array.from(rows);
  };
}
