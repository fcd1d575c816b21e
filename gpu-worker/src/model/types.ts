/**
 * Types shared by the model pipeline: checkpoint reading → ONNX graph building → runtime.
 */
import type { QNetArchitecture } from "../../../shared/qnet/types.ts";

/** A dense float32 tensor, row-major (C order), as read from a checkpoint. */
export interface Float32Tensor {
  shape: number[];
  data: Float32Array;
}

/** Tensors by name. */
export type TensorMap = Map<string, Float32Tensor>;

/** BERT hyperparameters. Most are inferred from tensor shapes; the head count is not. */
export interface BertDims {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  vocabSize: number;
  maxPositions: number;
  typeVocabSize: number;
  /** Always 1e-12 for BERT. */
  layerNormEps: number;
}

export type Pooling = "cls" | "mean";

/** Everything about a Hypencoder's architecture that the graphs need. */
export interface HypencoderSpec {
  qnet: QNetArchitecture;
  /** Document pooling: the [CLS] vector or the mask-weighted mean. */
  pooling: Pooling;
  sharedEncoder: boolean;
  /** query_encoder_kwargs.model_name_or_path, e.g. "google-bert/bert-base-uncased". */
  baseModelName: string;
  bert: BertDims;
}

/**
 * Weights with the checkpoint prefixes removed:
 * - BERT names as in HF BertModel, e.g. "embeddings.word_embeddings.weight",
 *   "encoder.layer.0.attention.self.query.weight" (Linear weights are torch layout [out, in]);
 * - hyperhead names as in the official Hypencoder module, e.g. "weight_query_embeddings.0",
 *   "key_projections.3.weight", "hyper_base_vectors.1".
 * With a shared encoder, queryBert and passageBert are the same map.
 */
export interface HypencoderWeights {
  queryBert: TensorMap;
  passageBert: TensorMap;
  hyperhead: TensorMap;
}

/**
 * The ONNX graphs' interface. The runtime, the importer and the graph builders all use these names.
 * - query encoder: input_ids, attention_mask (int64 [B,S]) → weight_i float32 [B, dims[i], dims[i+1]]
 *   for i = 0..L and bias_j float32 [B, dims[j+1]] for j = 0..L-1;
 * - document encoder: input_ids, attention_mask (int64 [B,S]) → embeddings float32 [B, hidden];
 * - q-net scorer: embeddings float32 [N, dims[0]] plus weight_i [dims[i], dims[i+1]] and bias_j [dims[j+1]]
 *   → scores float32 [N]; the fp16 variant takes embeddings as float16.
 */
export const GRAPH_IO = {
  inputIds: "input_ids",
  attentionMask: "attention_mask",
  embeddings: "embeddings",
  scores: "scores",
  weight: (i: number) => `weight_${i}`,
  bias: (j: number) => `bias_${j}`,
} as const;

export const GRAPH_FILES = {
  queryEncoder: "query_encoder.onnx",
  docEncoder: "doc_encoder.onnx",
  qnetScorer: "qnet_scorer.onnx",
  /** The same scorer taking float16 embeddings (the index's storage type), cast to float32 inside. */
  qnetScorerFp16: "qnet_scorer_fp16.onnx",
} as const;
