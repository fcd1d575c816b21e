/**
 * Entry rows for graph search chosen at index build time: k-means centroids over a sample of the
 * shard, each replaced by its nearest sampled row (search scores rows, not centroids). Random entry
 * points need thousands of rows to land in every cluster of a clustered corpus; one medoid per
 * cluster does it with a few hundred.
 */
import { BUILD_DEFAULTS } from "../../../../shared/api/worker-api.ts";
import { SEED_MAX } from "../../../../shared/random.ts";
import { sampleUnmarked, seededRandom } from "../../search/random.ts";
import { checkInteger } from "../../search/validate.ts";

/**
 * The fit index builds use. It only has to find the clusters: at 768-d, 256 centroids on 32 rows
 * each for 8 iterations cost ~13 GFLOP (about 10 s of JavaScript) per shard; this is a fifth of that.
 */
export const ENTRY_ROWS_DEFAULTS = {
  count: BUILD_DEFAULTS.entryRows,
  /** Sampled rows per centroid for the k-means fit. */
  samplePerCentroid: 12,
  iterations: 5,
  seed: 0,
};

export interface EntryRowsOptions {
  count?: number;
  samplePerCentroid?: number;
  iterations?: number;
  seed?: number;
}

export function kmeansEntryRows(embeddings: Float32Array, dim: number, options: EntryRowsOptions = {}): Uint32Array {
  const d = ENTRY_ROWS_DEFAULTS;
  checkInteger("dim", dim, 1);
  if (embeddings.length % dim !== 0) throw new RangeError(`entry rows: ${embeddings.length} values is not a whole number of ${dim}-wide rows`);
  const n = embeddings.length / dim;
  const count = Math.min(checkInteger("count", options.count ?? d.count, 1), n);
  const perCentroid = checkInteger("samplePerCentroid", options.samplePerCentroid ?? d.samplePerCentroid, 1);
  const iterations = checkInteger("iterations", options.iterations ?? d.iterations, 0);
  const rand = seededRandom(checkInteger("seed", options.seed ?? d.seed, 0, SEED_MAX));
  if (n === 0) return new Uint32Array(0);

  const sample: number[] = [];
  sampleUnmarked(rand, n, new Uint8Array(n), 0, Math.min(n, count * perCentroid), sample);
  const s = sample.length;
  const points = new Float64Array(s * dim);
  sample.forEach((row, i) => {
    for (let k = 0; k < dim; k++) points[i * dim + k] = embeddings[row * dim + k];
  });

  // Lloyd's algorithm, initialised with the first `count` sampled points (the sample is random).
  const centroids = points.slice(0, count * dim);
  const assignment = new Int32Array(s);
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < s; i++) assignment[i] = nearest(points, i, centroids, count, dim);
    const sums = new Float64Array(count * dim);
    const sizes = new Uint32Array(count);
    for (let i = 0; i < s; i++) {
      const c = assignment[i];
      sizes[c]++;
      for (let k = 0; k < dim; k++) sums[c * dim + k] += points[i * dim + k];
    }
    for (let c = 0; c < count; c++) {
      if (sizes[c] === 0) continue; // an empty cluster keeps its centroid
      for (let k = 0; k < dim; k++) centroids[c * dim + k] = sums[c * dim + k] / sizes[c];
    }
  }

  // Each centroid's nearest sampled row; distinct rows only (two centroids can share one).
  const best = new Float64Array(count).fill(Infinity);
  const bestRow = new Int32Array(count).fill(-1);
  for (let i = 0; i < s; i++) {
    for (let c = 0; c < count; c++) {
      const dist = squaredDistance(points, i, centroids, c, dim);
      if (dist < best[c]) {
        best[c] = dist;
        bestRow[c] = sample[i];
      }
    }
  }
  return Uint32Array.from(new Set(bestRow));
}

function squaredDistance(a: Float64Array, i: number, b: Float64Array, j: number, dim: number): number {
  let sum = 0;
  const ao = i * dim;
  const bo = j * dim;
  for (let k = 0; k < dim; k++) {
    const diff = a[ao + k] - b[bo + k];
    sum += diff * diff;
  }
  return sum;
}

function nearest(points: Float64Array, i: number, centroids: Float64Array, count: number, dim: number): number {
  let best = 0;
  let bestDist = Infinity;
  for (let c = 0; c < count; c++) {
    const dist = squaredDistance(points, i, centroids, c, dim);
    if (dist < bestDist) {
      bestDist = dist;
      best = c;
    }
  }
  return best;
}
