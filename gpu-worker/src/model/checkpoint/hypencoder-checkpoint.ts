/**
 * Reads a published Hypencoder checkpoint directory (HF layout: config.json + model.safetensors or
 * pytorch_model.bin) into the architecture spec and prefix-free weights the graph builders take.
 *
 * Every tensor the graphs need must be present with its exact shape; tensors we would not use are
 * errors too (apart from BERT's pooler and position_ids buffer), because an unexpected tensor means
 * an architecture we do not implement.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { BertDims, HypencoderSpec, HypencoderWeights, TensorMap } from "../types.ts";
import { type BaseConfig, inferBertShapeDims, parseBaseConfig, readBaseConfig, resolveBertDims, type BertShapeDims } from "./bert-dims.ts";
import { parseHypencoderConfig } from "./config.ts";
import { loadTensorFile, sha256, type SourceFile } from "./load-tensors.ts";
import { bertTensorShapes, hyperheadTensorShapes, isIgnoredBertTensor, PREFIX } from "./tensor-layout.ts";

export class CheckpointTensorError extends Error {
  override name = "CheckpointTensorError";
}

export interface HypencoderCheckpoint {
  spec: HypencoderSpec;
  weights: HypencoderWeights;
  /** config.json and the weights file, for provenance. */
  sourceFiles: SourceFile[];
}

export interface LoadHypencoderOptions {
  /**
   * The base BERT's config.json (for num_attention_heads). Overrides the config.json's own
   * `base_encoder_config`; needed when neither that nor the base model's name tells the head count.
   */
  baseConfigPath?: string;
}

export async function loadHypencoderCheckpoint(
  dir: string,
  options: LoadHypencoderOptions = {},
): Promise<HypencoderCheckpoint> {
  const configPath = join(dir, "config.json");
  let configBytes: Buffer;
  try {
    configBytes = await readFile(configPath);
  } catch {
    throw new Error(`${dir}: no config.json (is this a HuggingFace-layout Hypencoder checkpoint directory?)`);
  }
  let configJson: unknown;
  try {
    configJson = JSON.parse(configBytes.toString("utf8"));
  } catch (e) {
    throw new Error(`${configPath}: invalid JSON (${(e as Error).message})`);
  }
  const config = parseHypencoderConfig(configJson, configPath);
  const base = await baseConfigOf(configJson, configPath, options.baseConfigPath);
  const { tensors, file } = await loadTensorFile(dir);
  const source = join(dir, file.name);

  const groups = groupTensors(tensors, source);
  const queryCopy = groups.queryBert.size > 0;
  const passageCopy = groups.passageBert.size > 0;
  let bertRaw: { raw: TensorMap; prefix: string };
  if (config.sharedEncoder) {
    // One encoder serves both sides; a checkpoint may hold it under either name (or both: query wins).
    if (!queryCopy && !passageCopy) {
      throw new CheckpointTensorError(`${source}: no BERT tensors under "${PREFIX.queryBert}" or "${PREFIX.passageBert}"`);
    }
    bertRaw = queryCopy
      ? { raw: groups.queryBert, prefix: PREFIX.queryBert }
      : { raw: groups.passageBert, prefix: PREFIX.passageBert };
  } else {
    for (const [present, prefix] of [
      [queryCopy, PREFIX.queryBert],
      [passageCopy, PREFIX.passageBert],
    ] as const) {
      if (!present) {
        throw new CheckpointTensorError(`${source}: shared_encoder is false but there are no tensors under "${prefix}"`);
      }
    }
    bertRaw = { raw: groups.queryBert, prefix: PREFIX.queryBert };
  }

  const shapeDims = inferBertShapeDims(bertRaw.raw, `${source} (${bertRaw.prefix}*)`);
  const bert = resolveBertDims(shapeDims, {
    modelName: config.baseModelName,
    ...(base ? { baseConfig: base.config, baseConfigSource: base.source } : {}),
  });
  const queryBert = takeBert(bertRaw.raw, bert, bertRaw.prefix, source);
  let passageBert = queryBert;
  if (!config.sharedEncoder) {
    const passageShape = inferBertShapeDims(groups.passageBert, `${source} (${PREFIX.passageBert}*)`);
    checkSameShape(shapeDims, passageShape, source);
    passageBert = takeBert(groups.passageBert, bert, PREFIX.passageBert, source);
  }

  const hidden = bert.hiddenSize;
  if (config.qnet.dims[0] !== hidden) {
    throw new CheckpointTensorError(
      `${configPath}: query_encoder_kwargs.converter_kwargs.vector_dimensions[0] is ${config.qnet.dims[0]} ` +
        `but the BERT hidden size is ${hidden} (the q-net's input is the document embedding)`,
    );
  }
  if (config.baseEncoderOutputDim !== hidden) {
    throw new CheckpointTensorError(
      `${configPath}: query_encoder_kwargs.base_encoder_output_dim is ${config.baseEncoderOutputDim} ` +
        `but the BERT hidden size is ${hidden}`,
    );
  }
  const hyperhead = takeExactly(groups.hyperhead, hyperheadTensorShapes(config.qnet.dims, hidden), PREFIX.query, source);

  const spec: HypencoderSpec = {
    qnet: config.qnet,
    pooling: config.pooling,
    sharedEncoder: config.sharedEncoder,
    baseModelName: config.baseModelName,
    bert,
  };
  const configFile: SourceFile = { name: "config.json", bytes: configBytes.byteLength, sha256: sha256(configBytes) };
  return { spec, weights: { queryBert, passageBert, hyperhead }, sourceFiles: [configFile, file] };
}

/**
 * The base BERT's HF config: the --base-config file, else `base_encoder_config` inside config.json
 * (a checkpoint trained from scratch has no hub model whose config could be looked up), else none.
 */
async function baseConfigOf(
  configJson: unknown,
  configPath: string,
  baseConfigPath: string | undefined,
): Promise<{ config: BaseConfig; source: string } | undefined> {
  if (baseConfigPath) return { config: await readBaseConfig(baseConfigPath), source: `--base-config ${baseConfigPath}` };
  const embedded = (configJson as { base_encoder_config?: unknown } | null)?.base_encoder_config;
  if (embedded === undefined) return undefined;
  const source = `${configPath}: base_encoder_config`;
  return { config: parseBaseConfig(embedded, source), source };
}

/** Splits checkpoint tensors by owner, stripping the prefixes. */
function groupTensors(tensors: TensorMap, source: string): Record<"queryBert" | "passageBert" | "hyperhead", TensorMap> {
  const groups: Record<"queryBert" | "passageBert" | "hyperhead", TensorMap> = {
    queryBert: new Map(),
    passageBert: new Map(),
    hyperhead: new Map(),
  };
  for (const [name, t] of tensors) {
    if (name.startsWith(PREFIX.queryBert)) groups.queryBert.set(name.slice(PREFIX.queryBert.length), t);
    else if (name.startsWith(PREFIX.passageBert)) groups.passageBert.set(name.slice(PREFIX.passageBert.length), t);
    else if (name.startsWith(PREFIX.query)) groups.hyperhead.set(name.slice(PREFIX.query.length), t);
    else throw new CheckpointTensorError(`${source}: unexpected tensor "${name}" (not part of a Hypencoder dual encoder)`);
  }
  return groups;
}

/** Old checkpoints name LayerNorm parameters gamma/beta (TF heritage). */
function modernBertName(name: string): string {
  return name.replace(/\.LayerNorm\.gamma$/, ".LayerNorm.weight").replace(/\.LayerNorm\.beta$/, ".LayerNorm.bias");
}

function takeBert(raw: TensorMap, dims: BertDims, prefix: string, source: string): TensorMap {
  const renamed: TensorMap = new Map();
  for (const [name, t] of raw) if (!isIgnoredBertTensor(name)) renamed.set(modernBertName(name), t);
  return takeExactly(renamed, bertTensorShapes(dims), prefix, source);
}

/** Returns exactly the `expected` tensors, or throws naming the first missing/misshapen/unexpected one. */
function takeExactly(raw: TensorMap, expected: Map<string, number[]>, prefix: string, source: string): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, shape] of expected) {
    const t = raw.get(name);
    if (!t) throw new CheckpointTensorError(`${source}: missing tensor "${prefix}${name}" (expected shape [${shape.join(", ")}])`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new CheckpointTensorError(
        `${source}: tensor "${prefix}${name}" has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`,
      );
    }
    out.set(name, t);
  }
  for (const name of raw.keys()) {
    if (!expected.has(name)) {
      throw new CheckpointTensorError(`${source}: unexpected tensor "${prefix}${name}" (the architecture does not use it)`);
    }
  }
  return out;
}

function checkSameShape(query: BertShapeDims, passage: BertShapeDims, source: string): void {
  for (const key of Object.keys(query) as (keyof BertShapeDims)[]) {
    if (query[key] !== passage[key]) {
      throw new CheckpointTensorError(
        `${source}: the passage encoder's BERT differs from the query encoder's (${key} ${passage[key]} vs ` +
          `${query[key]}); separate encoders must share one architecture`,
      );
    }
  }
}
