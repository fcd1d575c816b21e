/**
 * BERT hyperparameters of a checkpoint. The sizes are read off the tensor shapes; the head count
 * (invisible in the shapes) comes from, in this order: a user-supplied base-model config
 * (--base-config), the base model's HF config carried inside the checkpoint's config.json as
 * `base_encoder_config` (published Hypencoder checkpoints name a hub model instead), or a table of
 * well-known base models.
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import type { BertDims, TensorMap } from "../types.ts";
import { describeZodIssue } from "./config.ts";

export class BertDimsError extends Error {
  override name = "BertDimsError";
}

export const BERT_LAYER_NORM_EPS = 1e-12;

/** Sizes visible in the tensor shapes of an HF BertModel state dict (names without prefix). */
export type BertShapeDims = Omit<BertDims, "numHeads" | "layerNormEps">;

export function inferBertShapeDims(bert: TensorMap, source: string): BertShapeDims {
  const shapeOf = (name: string, rank: number): number[] => {
    const t = bert.get(name);
    if (!t) throw new BertDimsError(`${source}: missing tensor "${name}"`);
    if (t.shape.length !== rank) {
      throw new BertDimsError(`${source}: tensor "${name}" has shape [${t.shape.join(", ")}], expected rank ${rank}`);
    }
    return t.shape;
  };
  const [vocabSize, hiddenSize] = shapeOf("embeddings.word_embeddings.weight", 2);
  const [maxPositions] = shapeOf("embeddings.position_embeddings.weight", 2);
  const [typeVocabSize] = shapeOf("embeddings.token_type_embeddings.weight", 2);
  const layers = new Set<number>();
  for (const name of bert.keys()) {
    const m = /^encoder\.layer\.(\d+)\./.exec(name);
    if (m) layers.add(Number(m[1]));
  }
  const numLayers = layers.size;
  if (numLayers === 0) throw new BertDimsError(`${source}: no encoder.layer.N tensors`);
  for (let l = 0; l < numLayers; l++) {
    if (!layers.has(l)) throw new BertDimsError(`${source}: encoder layers are not numbered 0..${numLayers - 1} (layer ${l} missing)`);
  }
  const [intermediateSize] = shapeOf("encoder.layer.0.intermediate.dense.weight", 2);
  return { hiddenSize, numLayers, intermediateSize, vocabSize, maxPositions, typeVocabSize };
}

/** The parts of an HF BertConfig we read; other keys (dropout, initializer_range, …) are irrelevant. */
const baseConfigSchema = z.looseObject({
  num_attention_heads: z.int().positive(),
  hidden_size: z.int().positive().optional(),
  num_hidden_layers: z.int().positive().optional(),
  intermediate_size: z.int().positive().optional(),
  vocab_size: z.int().positive().optional(),
  max_position_embeddings: z.int().positive().optional(),
  type_vocab_size: z.int().positive().optional(),
  layer_norm_eps: z.number().positive().optional(),
  hidden_act: z.string().optional(),
  position_embedding_type: z.string().optional(),
});
export type BaseConfig = z.infer<typeof baseConfigSchema>;

export async function readBaseConfig(path: string): Promise<BaseConfig> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new BertDimsError(`--base-config ${path}: cannot read JSON (${(e as Error).message})`);
  }
  return parseBaseConfig(json, `--base-config ${path}`);
}

/** Validates an HF BertConfig object; `where` names its origin in errors. */
export function parseBaseConfig(json: unknown, where: string): BaseConfig {
  const parsed = baseConfigSchema.safeParse(json);
  if (!parsed.success) {
    const { key, message } = describeZodIssue(parsed.error.issues[0]);
    throw new BertDimsError(`${where}: ${key}: ${message}`);
  }
  return parsed.data;
}

/** Well-known base models (matched on the name's last path segment): head count and hidden size. */
const KNOWN_MODELS: { pattern: RegExp; known: (m: RegExpExecArray) => KnownModel }[] = [
  // google/bert_uncased_L-4_H-256_A-4 and friends encode hidden size ("H") and heads ("A") in the name.
  {
    pattern: /bert_(?:un)?cased_L-\d+_H-(\d+)_A-(\d+)$/i,
    known: (m) => ({ hiddenSize: Number(m[1]), numHeads: Number(m[2]) }),
  },
  {
    pattern: /^bert-base-(?:uncased|cased|multilingual-uncased|multilingual-cased|chinese|german-cased)$/i,
    known: () => ({ hiddenSize: 768, numHeads: 12 }),
  },
  {
    pattern: /^bert-large-(?:uncased|cased)(?:-whole-word-masking)?$/i,
    known: () => ({ hiddenSize: 1024, numHeads: 16 }),
  },
  // prajjwal1/bert-{tiny,mini,small,medium}
  { pattern: /^bert-tiny$/i, known: () => ({ hiddenSize: 128, numHeads: 2 }) },
  { pattern: /^bert-mini$/i, known: () => ({ hiddenSize: 256, numHeads: 4 }) },
  { pattern: /^bert-small$/i, known: () => ({ hiddenSize: 512, numHeads: 8 }) },
  { pattern: /^bert-medium$/i, known: () => ({ hiddenSize: 512, numHeads: 8 }) },
];

export interface KnownModel {
  hiddenSize: number;
  numHeads: number;
}

/** What the table knows about `modelName`, or undefined. */
export function knownBaseModel(modelName: string): KnownModel | undefined {
  const last = modelName.replace(/\/+$/, "").split("/").pop() ?? "";
  for (const { pattern, known } of KNOWN_MODELS) {
    const m = pattern.exec(last);
    if (m) return known(m);
  }
  return undefined;
}

export interface ResolveBertDimsOptions {
  /** query_encoder_kwargs.model_name_or_path */
  modelName: string;
  baseConfig?: BaseConfig;
  /** Names the base config in errors, e.g. "--base-config path" or "config.json: base_encoder_config". */
  baseConfigSource?: string;
}

/** Completes the shape-derived sizes with the head count (and checks the base config agrees). */
export function resolveBertDims(shape: BertShapeDims, options: ResolveBertDimsOptions): BertDims {
  const { baseConfig, modelName } = options;
  let numHeads: number;
  let layerNormEps = BERT_LAYER_NORM_EPS;
  if (baseConfig) {
    const where = options.baseConfigSource ?? "base config";
    const compare: [keyof BaseConfig, number][] = [
      ["hidden_size", shape.hiddenSize],
      ["num_hidden_layers", shape.numLayers],
      ["intermediate_size", shape.intermediateSize],
      ["vocab_size", shape.vocabSize],
      ["max_position_embeddings", shape.maxPositions],
      ["type_vocab_size", shape.typeVocabSize],
    ];
    for (const [key, actual] of compare) {
      const declared = baseConfig[key];
      if (declared !== undefined && declared !== actual) {
        throw new BertDimsError(`${where}: ${key} is ${declared} but the checkpoint's tensors say ${actual}`);
      }
    }
    if (baseConfig.hidden_act !== undefined && baseConfig.hidden_act !== "gelu") {
      throw new BertDimsError(`${where}: hidden_act "${baseConfig.hidden_act}" is not supported (only "gelu")`);
    }
    const pet = baseConfig.position_embedding_type;
    if (pet !== undefined && pet !== "absolute") {
      throw new BertDimsError(`${where}: position_embedding_type "${pet}" is not supported (only "absolute")`);
    }
    numHeads = baseConfig.num_attention_heads;
    layerNormEps = baseConfig.layer_norm_eps ?? BERT_LAYER_NORM_EPS;
  } else {
    const known = knownBaseModel(modelName);
    if (known === undefined) {
      throw new BertDimsError(
        `cannot tell the attention head count of base model "${modelName}" (it is not in the checkpoint's tensors, ` +
          `config.json has no base_encoder_config and it is not a model we know): pass --base-config <the base model's config.json>`,
      );
    }
    if (known.hiddenSize !== shape.hiddenSize) {
      throw new BertDimsError(
        `base model "${modelName}" should have hidden size ${known.hiddenSize} but the checkpoint's tensors have ` +
          `${shape.hiddenSize}, so its head count is uncertain: pass --base-config <the base model's config.json>`,
      );
    }
    numHeads = known.numHeads;
  }
  if (shape.hiddenSize % numHeads !== 0) {
    throw new BertDimsError(
      `hidden size ${shape.hiddenSize} is not divisible by ${numHeads} attention heads ` +
        `(base model "${modelName}"${baseConfig ? "" : "; pass --base-config if the name is misleading"})`,
    );
  }
  return { ...shape, numHeads, layerNormEps };
}
