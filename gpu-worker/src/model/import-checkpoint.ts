/**
 * `hypencoder import`: a published HuggingFace-layout checkpoint → a self-contained `<model-dir>`
 * (ONNX graphs, tokenizer, manifest.json) that every other part of the system loads.
 *
 * Everything is written into a temporary sibling directory and renamed into place at the end,
 * so a failed import never leaves a half-written `<model-dir>`.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { loadHypencoderCheckpoint } from "./checkpoint/hypencoder-checkpoint.ts";
import type { GraphBuilder } from "./onnx/graph-builder.ts";
import { buildDocEncoderGraph } from "./onnx/doc-encoder.ts";
import { buildQNetScorerGraph } from "./onnx/qnet-scorer.ts";
import { buildQueryEncoderGraph } from "./onnx/query-encoder.ts";
import { saveModel } from "./onnx/save.ts";
import { copyTokenizerFiles, DEFAULT_DOC_MAX_LENGTH, DEFAULT_QUERY_MAX_LENGTH } from "./tokenizer/tokenizer.ts";
import {
  type FileEntry,
  MODEL_FORMAT,
  MODEL_FORMAT_VERSION,
  MODEL_MANIFEST_FILE,
  type ModelManifest,
} from "./model-manifest.ts";
import { GRAPH_FILES } from "./types.ts";

export interface ImportOptions {
  /** A BERT config.json giving num_attention_heads when the base model is not one we know. */
  baseConfigPath?: string;
  /** Replace an existing model directory. */
  force?: boolean;
  /** Progress messages for long imports (stderr in the CLI). */
  onProgress?: (message: string) => void;
}

export async function importCheckpoint(checkpointDir: string, outDir: string, options: ImportOptions = {}): Promise<ModelManifest> {
  const progress = options.onProgress ?? (() => {});
  const target = resolve(outDir);
  if (!options.force && (await exists(target))) {
    throw new Error(`${outDir} already exists (pass --force to replace it)`);
  }
  progress(`reading checkpoint ${checkpointDir}`);
  const { spec, weights, sourceFiles } = await loadHypencoderCheckpoint(checkpointDir, {
    ...(options.baseConfigPath ? { baseConfigPath: options.baseConfigPath } : {}),
  });

  await mkdir(dirname(target), { recursive: true });
  const staging = await mkdtemp(join(dirname(target), `.${basename(target)}.importing-`));
  try {
    const graphs = {
      queryEncoder: await writeGraph(staging, "queryEncoder", () => buildQueryEncoderGraph(spec, weights), progress),
      docEncoder: await writeGraph(staging, "docEncoder", () => buildDocEncoderGraph(spec.bert, weights.passageBert, spec.pooling), progress),
      qnetScorer: await writeGraph(staging, "qnetScorer", () => buildQNetScorerGraph(spec.qnet), progress),
      qnetScorerFp16: await writeGraph(
        staging,
        "qnetScorerFp16",
        () => buildQNetScorerGraph(spec.qnet, { embeddingType: "float16" }),
        progress,
      ),
    };
    progress("copying tokenizer");
    const tokenizerNames = await copyTokenizerFiles(checkpointDir, staging);
    const tokenizer = await Promise.all(tokenizerNames.map((name) => describeFile(staging, name)));

    const manifest: ModelManifest = {
      format: MODEL_FORMAT,
      version: MODEL_FORMAT_VERSION,
      modelId: contentId([...Object.values(graphs).flat(), ...tokenizer]),
      createdAt: new Date().toISOString(),
      source: { baseModelName: spec.baseModelName, files: sourceFiles },
      qnet: spec.qnet,
      bert: spec.bert,
      pooling: spec.pooling,
      sharedEncoder: spec.sharedEncoder,
      embeddingDim: spec.bert.hiddenSize,
      dtype: "float32",
      maxLength: {
        query: Math.min(DEFAULT_QUERY_MAX_LENGTH, spec.bert.maxPositions),
        document: Math.min(DEFAULT_DOC_MAX_LENGTH, spec.bert.maxPositions),
      },
      graphs,
      tokenizer,
    };
    // The manifest is written last: a directory without one is not a model.
    await writeFile(join(staging, MODEL_MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    await replaceDirectory(staging, target);
    progress(`wrote ${outDir} (model ${manifest.modelId.slice(0, 12)})`);
    return manifest;
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

async function writeGraph(
  dir: string,
  graph: keyof typeof GRAPH_FILES,
  build: () => GraphBuilder,
  progress: (message: string) => void,
): Promise<FileEntry[]> {
  progress(`building ${GRAPH_FILES[graph]}`);
  const saved = await saveModel(build(), dir, GRAPH_FILES[graph]);
  const names = [basename(saved.modelPath), ...(saved.dataPath ? [basename(saved.dataPath)] : [])];
  return Promise.all(names.map((name) => describeFile(dir, name)));
}

async function describeFile(dir: string, name: string): Promise<FileEntry> {
  const path = join(dir, name);
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return { name, bytes: (await stat(path)).size, sha256: hash.digest("hex") };
}

function contentId(files: FileEntry[]): string {
  const hash = createHash("sha256");
  for (const file of files) hash.update(`${file.name}\0${file.sha256}\n`);
  return hash.digest("hex");
}

/** Moves `staging` to `target`; an existing target is swapped out first and removed only after. */
async function replaceDirectory(staging: string, target: string): Promise<void> {
  if (!(await exists(target))) {
    await rename(staging, target);
    return;
  }
  const old = `${staging}.old`;
  await rename(target, old);
  try {
    await rename(staging, target);
  } catch (error) {
    await rename(old, target);
    throw error;
  }
  await rm(old, { recursive: true, force: true });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
