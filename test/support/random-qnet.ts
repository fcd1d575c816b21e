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
