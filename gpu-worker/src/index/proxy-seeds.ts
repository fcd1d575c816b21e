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
 * gradient at each (bench/reports/graph-search*.txt compare 1 and 4 points). But a gradient costs
 * about two q-net evaluations in plain TypeScript, ~10 ms for a 6-layer 768-d q-net, so the number
 * of points is what a fixed budget of multiply-adds buys (proxyGradientPoints): 4 for small q-nets,
 * 1 for BERT-base-sized ones, where 4 points cost 40 ms a query for no better recall (1M: 0.985 both).
 */
import type { DecodedShard } from "../../../shared/index/format.ts";
import { halfToFloat32Array } from "../../../shared/qnet/half.ts";
import type { RowHit } from "../search/topk.ts";

/** The most rows of the first frontier the gradient is taken at; the seeds are shared out between them. */
export const PROXY_GRADIENT_POINTS = 4;
/** Multiply-adds the gradients of one query may cost (forward and backward, all points): about 3 ms of TypeScript. */
export const PROXY_GRADIENT_BUDGET_MACS = 2_000_000;

/** Gradient points for a q-net of these dims: what PROXY_GRADIENT_BUDGET_MACS buys, 1 to PROXY_GRADIENT_POINTS. */
export function proxyGradientPoints(dims: readonly number[]): number {
  let macs = 0;
  for (let i = 0; i + 1 < dims.length; i++) macs += 2 * dims[i]! * dims[i + 1]!;
  return Math.max(1, Math.min(PROXY_GRADIENT_POINTS, Math.floor(PROXY_GRADIENT_BUDGET_MACS / macs)));
}

export interface InnerProductSearch {
  /** Rows by inner product with `vector`, best first, at most `count`. */
  search(vector: Float32Array, count: number): Uint32Array;
}

export interface GradientSource {
  /** ∇score at each of the points (row-major, a whole number of rows), the same way out. */
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
  /** At most this many gradient points (proxyGradientPoints of the q-net); PROXY_GRADIENT_POINTS when omitted. */
  points: number = PROXY_GRADIENT_POINTS,
): (best: readonly RowHit[], count: number) => Promise<Uint32Array> {
  const { dim } = shard;
  return async (best, count) => {
    const at = best.slice(0, points);
    if (at.length === 0 || count === 0) return new Uint32Array(0);
    // One request to the inference thread for every point.
    const stacked = new Float32Array(at.length * dim);
    at.forEach((hit, i) => stacked.set(shardRow(shard, hit.row), i * dim));
    const [index, gradients] = await Promise.all([proxyIndex(), qnet.gradient(stacked)]);
    const share = Math.ceil(count / at.length);
    const seen = new Set<number>();
    const rows: number[] = [];
    for (let i = 0; i < at.length; i++) {
      for (const row of index.search(gradients.subarray(i * dim, (i + 1) * dim), share)) {
        if (seen.has(row)) continue;
        seen.add(row);
        rows.push(row);
      }
    }
    return Uint32Array.from(rows);
  };
}
