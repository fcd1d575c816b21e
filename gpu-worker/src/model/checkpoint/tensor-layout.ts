/**
 * The tensors a Hypencoder checkpoint must contain, with their exact shapes.
 * One source of truth for both the loader (validation) and the tiny-checkpoint generator (creation).
 */
import type { BertDims } from "../types.ts";
import { hiddenLayerCount } from "../../../../shared/qnet/types.ts";

/** Checkpoint name prefixes. */
export const PREFIX = {
  query: "query_encoder.",
  passage: "passage_encoder.",
  queryBert: "query_encoder.transformer.",
  passageBert: "passage_encoder.transformer.",
} as const;

/** HF BertModel tensors the graphs use (no pooler: Hypencoder never uses it), torch layout. */
export function bertTensorShapes(dims: BertDims): Map<string, number[]> {
  const H = dims.hiddenSize;
  const I = dims.intermediateSize;
  const shapes = new Map<string, number[]>([
    ["embeddings.word_embeddings.weight", [dims.vocabSize, H]],
    ["embeddings.position_embeddings.weight", [dims.maxPositions, H]],
    ["embeddings.token_type_embeddings.weight", [dims.typeVocabSize, H]],
    ["embeddings.LayerNorm.weight", [H]],
    ["embeddings.LayerNorm.bias", [H]],
  ]);
  const linear = (name: string, out: number, inp: number) => {
    shapes.set(`${name}.weight`, [out, inp]);
    shapes.set(`${name}.bias`, [out]);
  };
  for (let l = 0; l < dims.numLayers; l++) {
    const p = `encoder.layer.${l}`;
    linear(`${p}.attention.self.query`, H, H);
    linear(`${p}.attention.self.key`, H, H);
    linear(`${p}.attention.self.value`, H, H);
    linear(`${p}.attention.output.dense`, H, H);
    shapes.set(`${p}.attention.output.LayerNorm.weight`, [H]);
    shapes.set(`${p}.attention.output.LayerNorm.bias`, [H]);
    linear(`${p}.intermediate.dense`, I, H);
    linear(`${p}.output.dense`, H, I);
    shapes.set(`${p}.output.LayerNorm.weight`, [H]);
    shapes.set(`${p}.output.LayerNorm.bias`, [H]);
  }
  return shapes;
}

/** BERT tensors that may be present but are not used (and so are dropped on load). */
export function isIgnoredBertTensor(name: string): boolean {
  return name === "embeddings.position_ids" || name.startsWith("pooler.");
}

/** Pooler tensors, which HF BertModel checkpoints carry; the generator writes them for realism. */
export function bertPoolerShapes(hiddenSize: number): Map<string, number[]> {
  return new Map([
    ["pooler.dense.weight", [hiddenSize, hiddenSize]],
    ["pooler.dense.bias", [hiddenSize]],
  ]);
}

/** The q-net's weight slots (in, out) and bias slots (in = the biased layer's width, out = 1). */
export function qnetSlots(dims: readonly number[]): { weights: [number, number][]; biases: [number, number][] } {
  const L = hiddenLayerCount({ dims: [...dims] });
  const weights: [number, number][] = [];
  for (let i = 0; i <= L; i++) weights.push([dims[i], dims[i + 1]]);
  const biases: [number, number][] = [];
  for (let j = 0; j < L; j++) biases.push([dims[j + 1], 1]);
  return { weights, biases };
}

/**
 * Hyperhead tensors of the official Hypencoder module (names without "query_encoder."),
 * for q-net dims `dims` on top of a BERT with `hiddenSize`.
 */
export function hyperheadTensorShapes(dims: readonly number[], hiddenSize: number): Map<string, number[]> {
  const { weights, biases } = qnetSlots(dims);
  const shapes = new Map<string, number[]>();
  weights.forEach(([inp, out], i) => {
    shapes.set(`hyper_base_matrices.${i}`, [1, out, inp]);
    shapes.set(`weight_query_embeddings.${i}`, [1, out, inp]);
    shapes.set(`weight_hyper_projection.${i}.weight`, [inp, inp]);
    shapes.set(`weight_hyper_projection.${i}.bias`, [inp]);
  });
  biases.forEach(([inp, out], j) => {
    shapes.set(`hyper_base_vectors.${j}`, [out, inp]);
    shapes.set(`bias_query_embeddings.${j}`, [1, out, inp]);
    shapes.set(`bias_hyper_projection.${j}.weight`, [inp, inp]);
    shapes.set(`bias_hyper_projection.${j}.bias`, [inp]);
  });
  // Key/value projections: one per slot, weight slots first, then bias slots.
  [...weights, ...biases].forEach(([inp], s) => {
    for (const kind of ["key_projections", "value_projections"]) {
      shapes.set(`${kind}.${s}.weight`, [inp, hiddenSize]);
      shapes.set(`${kind}.${s}.bias`, [inp]);
    }
  });
  return shapes;
}
