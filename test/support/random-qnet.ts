/** Seeded random Hypencoder hyperhead weights and q-nets of any shape, for tests and benchmarks. */
import type { TensorMap } from "../../gpu-worker/src/model/types.ts";
import type { QNet, QNetArchitecture } from "../../shared/qnet/types.ts";

/** `n` floats uniform in [-scale, scale). */
export function randomFloats(rand: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * scale;
  return out;
}

/** Every tensor the hyperhead reads, named as in the official module (no "query_encoder." prefix). */
export function randomHyperheadWeights(rand: () => number, qnet: Pick<QNetArchitecture, "dims">, h: number): TensorMap {
  const d = qnet.dims;
  const hidden = d.length - 2;
  const weights: TensorMap = new Map();
  const put = (name: string, shape: number[], scale: number) =>
    weights.set(name, { shape, data: randomFloats(rand, shape.reduce((a, b) => a * b, 1), scale) });
  const projections = (slot: number, inSize: number) => {
    put(`key_projections.${slot}.weight`, [inSize, h], 1 / Math.sqrt(h));
    put(`key_projections.${slot}.bias`, [inSize], 0.5);
    put(`value_projections.${slot}.weight`, [inSize, h], 1 / Math.sqrt(h));
    put(`value_projections.${slot}.bias`, [inSize], 0.5);
  };
  for (let i = 0; i <= hidden; i++) {
    const [inSize, outSize] = [d[i]!, d[i + 1]!];
    projections(i, inSize);
    put(`weight_query_embeddings.${i}`, [1, outSize, inSize], 1);
    put(`weight_hyper_projection.${i}.weight`, [inSize, inSize], 1 / Math.sqrt(inSize));
    put(`weight_hyper_projection.${i}.bias`, [inSize], 0.1);
    put(`hyper_base_matrices.${i}`, [1, outSize, inSize], 0.1);
  }
  for (let j = 0; j < hidden; j++) {
    const inSize = d[j + 1]!;
    projections(hidden + 1 + j, inSize);
    put(`bias_query_embeddings.${j}`, [1, 1, inSize], 1);
    put(`bias_hyper_projection.${j}.weight`, [inSize, inSize], 1 / Math.sqrt(inSize));
    put(`bias_hyper_projection.${j}.bias`, [inSize], 0.1);
    put(`hyper_base_vectors.${j}`, [1, inSize], 0.1);
  }
  return weights;
}

/** A q-net with random weights scaled so activations stay O(1) through the layers. */
export function randomQNet(rand: () => number, arch: QNetArchitecture): QNet {
  const d = arch.dims;
  return {
    ...arch,
    weights: d.slice(0, -1).map((inSize, i) => randomFloats(rand, inSize * d[i + 1]!, 1.5 / Math.sqrt(inSize))),
    biases: d.slice(1, -1).map((n) => randomFloats(rand, n, 0.3)),
  };
}

export interface RegionQNetOptions {
  /** The document embedding the q-net should prefer (its region of the space). */
  target: ArrayLike<number>;
  /** The corpus mean: the preferred direction is target − mean. */
  mean: ArrayLike<number>;
  /** Share of the last hidden layer's units that read the target direction (default 1/8). */
  unitShare?: number;
  /** Pre-activation gain of those units per unit of projection (default 2). */
  gain?: number;
  /** Output weight of those units (default 0.25; the random ones are at most 1.5/√d ≈ 0.054 at 768-d). */
  outputWeight?: number;
}

/**
 * A q-net that prefers a region of the embedding space, as trained ones do (a query's q-net scores
 * documents about its topic highest), built from randomQNet: a block of the LAST hidden layer's
 * units (unitShare of them) gets a weight column of gain·t̂ added, t̂ the unit direction from the
 * corpus mean to `target`, with a bias that centres it on the mean's projection, and a positive
 * output weight. The residual stream carries the input to that layer, so those units fire for
 * documents far along t̂, and the score rises with the projection on t̂ (it saturates through the
 * layer norm) while the random rest of the net still orders documents within the region, as fine
 * relevance does. Random q-nets alone (randomQNet) prefer no region: their top-10 on clustered
 * data is spread over clusters, which trained q-nets' is not.
 */
export function regionQNet(rand: () => number, arch: QNetArchitecture, options: RegionQNetOptions): QNet {
  const qnet = randomQNet(rand, arch);
  const d = arch.dims;
  const layers = d.length - 2;
  const din = d[layers - 1]!;
  const dout = d[layers]!;
  if (options.target.length !== din || options.mean.length !== din) {
    throw new RangeError(`regionQNet: the last hidden layer reads ${din}-d inputs; target and mean must be ${din}-d`);
  }
  const direction = new Float64Array(din);
  let norm = 0;
  for (let k = 0; k < din; k++) {
    direction[k] = options.target[k]! - options.mean[k]!;
    norm += direction[k]! ** 2;
  }
  norm = Math.sqrt(norm) || 1;
  let meanProjection = 0;
  for (let k = 0; k < din; k++) {
    direction[k] = direction[k]! / norm;
    meanProjection += direction[k]! * options.mean[k]!;
  }
  const units = Math.max(1, Math.round(dout * (options.unitShare ?? 1 / 8)));
  const gain = options.gain ?? 2;
  const w = qnet.weights[layers - 1]!;
  const b = qnet.biases[layers - 1]!;
  const out = qnet.weights[layers]!;
  for (let u = 0; u < units; u++) {
    for (let k = 0; k < din; k++) w[k * dout + u] = w[k * dout + u]! + gain * direction[k]!;
    b[u] = b[u]! - gain * meanProjection;
    out[u] = options.outputWeight ?? 0.25;
  }
  return qnet;
}
