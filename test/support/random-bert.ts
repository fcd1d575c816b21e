/**
 * Seeded random BERT weights (HF BertModel names, torch layout) for tests and benchmarks.
 * Scales are chosen so attention is far from uniform and GELU sees both signs, so the comparisons
 * exercise every op rather than a near-constant network.
 */
import type { BertDims, Float32Tensor, TensorMap } from "../../gpu-worker/src/model/types.ts";
import { seededRandom } from "../../shared/random.ts";

export { seededRandom };

/** A small BERT: fast in the float64 reference, but with several heads and layers. */
export const SMALL_BERT: BertDims = {
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  intermediateSize: 64,
  vocabSize: 50,
  maxPositions: 40,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
};

export function randomBertWeights(dims: BertDims, seed: number): TensorMap {
  const rand = seededRandom(seed);
  const weights: TensorMap = new Map();
  /** Uniform in [center − scale, center + scale]. */
  const put = (name: string, shape: number[], scale: number, center = 0) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = center + scale * (2 * rand() - 1);
    weights.set(name, { shape, data } satisfies Float32Tensor);
  };
  const { hiddenSize: H, intermediateSize: I } = dims;
  const linear = (prefix: string, out: number, inp: number) => {
    put(`${prefix}.weight`, [out, inp], 1.7 / Math.sqrt(inp));
    put(`${prefix}.bias`, [out], 0.1);
  };
  const layerNorm = (prefix: string) => {
    put(`${prefix}.weight`, [H], 0.2, 1);
    put(`${prefix}.bias`, [H], 0.1);
  };

  put("embeddings.word_embeddings.weight", [dims.vocabSize, H], 1);
  put("embeddings.position_embeddings.weight", [dims.maxPositions, H], 0.5);
  put("embeddings.token_type_embeddings.weight", [dims.typeVocabSize, H], 0.5);
  layerNorm("embeddings.LayerNorm");
  for (let l = 0; l < dims.numLayers; l++) {
    const p = `encoder.layer.${l}`;
    for (const part of ["query", "key", "value"]) linear(`${p}.attention.self.${part}`, H, H);
    linear(`${p}.attention.output.dense`, H, H);
    layerNorm(`${p}.attention.output.LayerNorm`);
    linear(`${p}.intermediate.dense`, I, H);
    linear(`${p}.output.dense`, H, I);
    layerNorm(`${p}.output.LayerNorm`);
  }
  return weights;
}
