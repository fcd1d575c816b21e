/**
 * Seeded synthetic document embeddings for tests and benchmarks of the search algorithms: Gaussian
 * clusters, which is the structure (topics) that makes kNN graphs of real embeddings poorly connected
 * between clusters and graph search sensitive to its entry points.
 */
import { gaussian, seededRandom } from "../../shared/random.ts";
import type { RowHit } from "../../gpu-worker/src/search/topk.ts";

export interface ClusteredCorpusOptions {
  n: number;
  dim: number;
  clusters: number;
  seed: number;
  /** Standard deviation of the cluster centres per coordinate. */
  centreSpread?: number;
  /** Standard deviation of documents around their centre along each latent direction. */
  clusterSpread?: number;
  /**
   * Each cluster spreads along this many random directions (a low-rank Gaussian) plus a little
   * isotropic noise; 0 means isotropic. Real embeddings have a low intrinsic dimension; in an
   * isotropic 32-d Gaussian, nearest neighbours are barely nearer than random rows (distance
   * concentration), which no kNN graph can navigate.
   */
  latentDim?: number;
  /** Standard deviation of the isotropic noise when latentDim > 0. */
  noise?: number;
}

/** n × dim row-major embeddings; row r belongs to a random cluster. */
export function clusteredEmbeddings(options: ClusteredCorpusOptions): Float32Array {
  const { n, dim, clusters, seed, centreSpread = 1, clusterSpread = 0.35, latentDim = 0, noise = 0.05 } = options;
  const rand = seededRandom(seed);
  const gauss = gaussian(rand);
  const centres = new Float64Array(clusters * dim);
  for (let i = 0; i < centres.length; i++) centres[i] = gauss() * centreSpread;
  // Per cluster, latentDim directions of dim values each.
  const bases = new Float64Array(clusters * latentDim * dim);
  for (let i = 0; i < bases.length; i++) bases[i] = (gauss() * clusterSpread) / Math.sqrt(dim);
  const z = new Float64Array(latentDim);
  const out = new Float32Array(n * dim);
  for (let r = 0; r < n; r++) {
    const cluster = Math.floor(rand() * clusters);
    const row = out.subarray(r * dim, (r + 1) * dim);
    for (let k = 0; k < dim; k++) row[k] = centres[cluster * dim + k];
    if (latentDim === 0) {
      for (let k = 0; k < dim; k++) row[k] += gauss() * clusterSpread;
      continue;
    }
    for (let l = 0; l < latentDim; l++) z[l] = gauss() * Math.sqrt(dim);
    for (let l = 0; l < latentDim; l++) {
      const base = (cluster * latentDim + l) * dim;
      for (let k = 0; k < dim; k++) row[k] += z[l] * bases[base + k];
    }
    for (let k = 0; k < dim; k++) row[k] += gauss() * noise;
  }
  return out;
}

/** |found ∩ truth| / |truth| over (shard, row) identity. */
export function recall(found: readonly RowHit[], truth: readonly RowHit[]): number {
  if (truth.length === 0) return 1;
  const want = new Set(truth.map((h) => `${h.shard}:${h.row}`));
  let hits = 0;
  for (const h of found) if (want.has(`${h.shard}:${h.row}`)) hits++;
  return hits / truth.length;
}
