/**
 * `<model-dir>/manifest.json`: what `hypencoder import` wrote, and the one file every later stage reads
 * to learn a model's shape. Written last, so a directory without it is not a model.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { ACTIVATIONS } from "../../../shared/qnet/types.ts";
import { GRAPH_FILES } from "./types.ts";

export const MODEL_MANIFEST_FILE = "manifest.json";
export const MODEL_FORMAT = "hypencoder.model";
export const MODEL_FORMAT_VERSION = 1;

const fileEntry = z.object({
  name: z.string().min(1),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type FileEntry = z.infer<typeof fileEntry>;

const positiveInt = z.number().int().positive();

export const modelManifestSchema = z.object({
  format: z.literal(MODEL_FORMAT),
  version: z.literal(MODEL_FORMAT_VERSION),
  /**
   * Content address of the model: sha256 over the graph and tokenizer files' digests. An index
   * records it, so a search never runs one model's q-nets over another model's embeddings.
   */
  modelId: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: z.string(),
  source: z.object({
    baseModelName: z.string(),
    files: z.array(fileEntry),
  }),
  qnet: z.object({
    dims: z.array(positiveInt).min(3),
    activation: z.enum(ACTIVATIONS),
    doLayerNorm: z.boolean(),
    doResidual: z.boolean(),
    doResidualOnLast: z.boolean(),
    layerNormBeforeResidual: z.boolean(),
  }),
  bert: z.object({
    hiddenSize: positiveInt,
    numLayers: positiveInt,
    numHeads: positiveInt,
    intermediateSize: positiveInt,
    vocabSize: positiveInt,
    maxPositions: positiveInt,
    typeVocabSize: positiveInt,
    layerNormEps: z.number().positive(),
  }),
  pooling: z.enum(["cls", "mean"]),
  sharedEncoder: z.boolean(),
  /** Document embedding width (= BERT hidden size = q-net input width). */
  embeddingDim: positiveInt,
  /** Storage type of the graphs' weights. */
  dtype: z.literal("float32"),
  /** Default token limits, including [CLS] and [SEP]; both capped by bert.maxPositions. */
  maxLength: z.object({ query: positiveInt, document: positiveInt }),
  graphs: z.object({
    queryEncoder: z.array(fileEntry).min(1),
    docEncoder: z.array(fileEntry).min(1),
    qnetScorer: z.array(fileEntry).min(1),
    qnetScorerFp16: z.array(fileEntry).min(1),
  }),
  tokenizer: z.array(fileEntry).min(1),
});
export type ModelManifest = z.infer<typeof modelManifestSchema>;

/** Reads and validates a model directory's manifest. */
export async function readModelManifest(modelDir: string): Promise<ModelManifest> {
  const path = join(modelDir, MODEL_MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    throw new Error(`${modelDir} is not a model directory: ${MODEL_MANIFEST_FILE} is missing (create one with "hypencoder import")`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: invalid JSON (${(error as Error).message})`);
  }
  const parsed = modelManifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${path}: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return parsed.data;
}

/** The path of a model graph's .onnx file. */
export function graphPath(modelDir: string, graph: keyof typeof GRAPH_FILES): string {
  return join(modelDir, GRAPH_FILES[graph]);
}
