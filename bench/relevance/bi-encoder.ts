/**
 * The same-backbone bi-encoder baseline on our serving path: its HF BertModel checkpoint goes through
 * the checkpoint reader, the ONNX document-encoder graph and the BERT tokenizer that the Hypencoder
 * uses, and runs on onnxruntime-node. Queries and documents share the one encoder; relevance is the
 * inner product of their pooled vectors: [CLS], or the mask-weighted mean when config.json says
 * `"pooling_type": "mean"` (as the Hypencoder's document side does).
 */
import { mkdir, readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { inferBertShapeDims, readBaseConfig, resolveBertDims } from "../../gpu-worker/src/model/checkpoint/bert-dims.ts";
import { loadTensorFile } from "../../gpu-worker/src/model/checkpoint/load-tensors.ts";
import { bertTensorShapes, isIgnoredBertTensor } from "../../gpu-worker/src/model/checkpoint/tensor-layout.ts";
import { buildDocEncoderGraph } from "../../gpu-worker/src/model/onnx/doc-encoder.ts";
import { saveModel } from "../../gpu-worker/src/model/onnx/save.ts";
import { createSession } from "../../gpu-worker/src/model/runtime/execution-provider.ts";
import { BertTokenizer } from "../../gpu-worker/src/model/tokenizer/tokenizer.ts";
import { type BertDims, GRAPH_IO, type Pooling, type TensorMap } from "../../gpu-worker/src/model/types.ts";

const WORD_EMBEDDINGS = "embeddings.word_embeddings.weight";

export class BiEncoder {
  private constructor(
    readonly dims: BertDims,
    readonly pooling: Pooling,
    private readonly session: ort.InferenceSession,
    private readonly tokenizer: BertTokenizer,
  ) {}

  /** Reads `checkpointDir` (config.json with num_attention_heads, weights, tokenizer) and writes its graph into `graphDir`. */
  static async load(checkpointDir: string, graphDir: string): Promise<BiEncoder> {
    const { tensors, file } = await loadTensorFile(checkpointDir);
    const bert = stripBertPrefix(tensors, join(checkpointDir, file.name));
    const source = join(checkpointDir, file.name);
    const configPath = join(checkpointDir, "config.json");
    const dims = resolveBertDims(inferBertShapeDims(bert, source), {
      modelName: "bi-encoder",
      baseConfig: await readBaseConfig(configPath),
      baseConfigSource: configPath,
    });
    const expected = bertTensorShapes(dims);
    for (const [name, shape] of expected) {
      const t = bert.get(name);
      if (!t || t.shape.join() !== shape.join()) throw new Error(`${source}: tensor ${name} missing or not [${shape.join(", ")}]`);
    }
    for (const name of bert.keys()) if (!expected.has(name)) throw new Error(`${source}: unexpected tensor ${name}`);
    await mkdir(graphDir, { recursive: true });
    const pooling = await readPooling(configPath);
    const saved = await saveModel(buildDocEncoderGraph(dims, bert, pooling), graphDir, "bi_encoder.onnx");
    const { session } = await createSession(saved.modelPath, "cpu", availableParallelism());
    return new BiEncoder(dims, pooling, session, await BertTokenizer.fromDirectory(checkpointDir));
  }

  /** Pooled vectors as one row-major Float32Array, texts batched by similar length (as the runtime does). */
  async encode(texts: readonly string[], maxLength: number, onProgress?: (done: number, total: number) => void): Promise<Float32Array> {
    const H = this.dims.hiddenSize;
    const limit = Math.min(maxLength, this.dims.maxPositions);
    const order = texts.map((_, i) => i).sort((a, b) => texts[a]!.length - texts[b]!.length);
    const rows = new Float32Array(texts.length * H);
    const batchSize = 16;
    for (let start = 0; start < order.length; start += batchSize) {
      const indices = order.slice(start, start + batchSize);
      const batch = this.tokenizer.encodeBatch(indices.map((i) => texts[i]!), limit);
      const dims = [batch.batchSize, batch.seqLen];
      const out = await this.session.run({
        [GRAPH_IO.inputIds]: new ort.Tensor("int64", batch.inputIds, dims),
        [GRAPH_IO.attentionMask]: new ort.Tensor("int64", batch.attentionMask, dims),
      });
      const embeddings = out[GRAPH_IO.embeddings]!.data as Float32Array;
      indices.forEach((doc, row) => rows.set(embeddings.subarray(row * H, (row + 1) * H), doc * H));
      onProgress?.(Math.min(start + batchSize, order.length), order.length);
    }
    return rows;
  }

  close(): Promise<void> {
    return this.session.release();
  }
}

/**
 * HF BertModel tensors without whatever prefix the checkpoint puts before them ("bert.", or none),
 * pooler and position-id buffer dropped. Tensors outside that prefix are an error: they would mean
 * an architecture this baseline does not implement.
 */
function stripBertPrefix(tensors: TensorMap, source: string): TensorMap {
  const anchor = [...tensors.keys()].find((name) => name.endsWith(WORD_EMBEDDINGS));
  if (!anchor) throw new Error(`${source}: no ${WORD_EMBEDDINGS} tensor: not a BERT checkpoint`);
  const prefix = anchor.slice(0, -WORD_EMBEDDINGS.length);
  const bert: TensorMap = new Map();
  for (const [name, t] of tensors) {
    if (!name.startsWith(prefix)) throw new Error(`${source}: unexpected tensor ${name} (not under "${prefix}")`);
    const local = name.slice(prefix.length);
    if (!isIgnoredBertTensor(local)) bert.set(local, t);
  }
  return bert;
}

async function readPooling(configPath: string): Promise<Pooling> {
  const pooling = (JSON.parse(await readFile(configPath, "utf8")) as { pooling_type?: unknown }).pooling_type ?? "cls";
  if (pooling !== "cls" && pooling !== "mean") throw new Error(`${configPath}: pooling_type ${JSON.stringify(pooling)} is not "cls" or "mean"`);
  return pooling;
}

/** Inner products of one query vector with every row of `docs`. */
export function innerProducts(query: Float32Array, docs: Float32Array, dim: number): Float32Array {
  const n = docs.length / dim;
  const scores = new Float32Array(n);
  for (let d = 0; d < n; d++) {
    let s = 0;
    const base = d * dim;
    for (let i = 0; i < dim; i++) s += query[i]! * docs[base + i]!;
    scores[d] = s;
  }
  return scores;
}
