/**
 * The model runtime: load a `<model-dir>` and turn texts into q-nets and document embeddings,
 * and q-nets plus embeddings into scores. Tokenization runs here; the graphs run on the
 * inference thread (CUDA when available, otherwise CPU).
 */
import { availableParallelism } from "node:os";
import type { QNet } from "../../../../shared/qnet/types.ts";
import { graphPath, type ModelManifest, readModelManifest } from "../model-manifest.ts";
import { BertTokenizer } from "../tokenizer/tokenizer.ts";
import { GRAPH_IO } from "../types.ts";
import { InferenceClient } from "./inference-client.ts";
import type { Device, GraphName, TensorMessage } from "./tensor-message.ts";

export interface RuntimeOptions {
  device?: Device;
  /** onnxruntime intra-op threads; defaults to every core. */
  intraOpThreads?: number;
}

export interface EncodeOptions {
  /** Token limit including [CLS] and [SEP]; defaults to the model manifest's. */
  maxLength?: number;
  batchSize?: number;
  /** Called after each batch with the number of texts done. */
  onProgress?: (done: number, total: number) => void;
}

export interface ScoreOptions {
  /** Documents per scorer call; bounds the activations' memory (batch × width × 4 bytes × a few). */
  batchSize?: number;
}

const DEFAULT_QUERY_BATCH = 32;
const DEFAULT_DOC_BATCH = 16;
const DEFAULT_SCORE_BATCH = 16_384;

export class HypencoderRuntime {
  private constructor(
    readonly modelDir: string,
    readonly manifest: ModelManifest,
    private readonly tokenizer: BertTokenizer,
    private readonly inference: InferenceClient,
  ) {}

  static async load(modelDir: string, options: RuntimeOptions = {}): Promise<HypencoderRuntime> {
    const manifest = await readModelManifest(modelDir);
    const tokenizer = await BertTokenizer.fromDirectory(modelDir);
    const graphs = Object.fromEntries(
      (["queryEncoder", "docEncoder", "qnetScorer"] as const).map((g) => [g, graphPath(modelDir, g)]),
    ) as Record<GraphName, string>;
    const inference = await InferenceClient.start({
      graphs,
      device: options.device ?? "auto",
      intraOpThreads: options.intraOpThreads ?? availableParallelism(),
    });
    return new HypencoderRuntime(modelDir, manifest, tokenizer, inference);
  }

  /** The device each loaded graph runs on. */
  get devices(): ReadonlyMap<GraphName, "cpu" | "cuda"> {
    return this.inference.devices;
  }

  /** One q-net per query text. */
  async encodeQueries(texts: readonly string[], options: EncodeOptions = {}): Promise<QNet[]> {
    const maxLength = this.checkMaxLength(options.maxLength ?? this.manifest.maxLength.query);
    const batchSize = options.batchSize ?? DEFAULT_QUERY_BATCH;
    const qnets: QNet[] = [];
    for (let start = 0; start < texts.length; start += batchSize) {
      const batch = texts.slice(start, start + batchSize);
      const outputs = await this.inference.run("queryEncoder", this.tokenFeeds(batch, maxLength));
      for (let q = 0; q < batch.length; q++) qnets.push(this.qnetAt(outputs, q));
      options.onProgress?.(qnets.length, texts.length);
    }
    return qnets;
  }

  /**
   * Document embeddings as one row-major Float32Array of texts.length × embeddingDim.
   * Texts are batched by similar length, so short documents don't pay for long ones' padding.
   */
  async embedDocuments(texts: readonly string[], options: EncodeOptions = {}): Promise<Float32Array> {
    const maxLength = this.checkMaxLength(options.maxLength ?? this.manifest.maxLength.document);
    const batchSize = options.batchSize ?? DEFAULT_DOC_BATCH;
    const dim = this.manifest.embeddingDim;
    const order = texts.map((_, i) => i).sort((a, b) => texts[a]!.length - texts[b]!.length);
    const rows = new Float32Array(texts.length * dim);
    for (let start = 0; start < order.length; start += batchSize) {
      const indices = order.slice(start, start + batchSize);
      const outputs = await this.inference.run("docEncoder", this.tokenFeeds(indices.map((i) => texts[i]!), maxLength));
      const embeddings = outputs[GRAPH_IO.embeddings]!.data as Float32Array;
      indices.forEach((docIndex, row) => rows.set(embeddings.subarray(row * dim, (row + 1) * dim), docIndex * dim));
      options.onProgress?.(Math.min(start + batchSize, order.length), order.length);
    }
    return rows;
  }

  /** Scores every row of `embeddings` (row-major, embeddingDim wide) with one q-net. */
  async score(qnet: QNet, embeddings: Float32Array, options: ScoreOptions = {}): Promise<Float32Array> {
    const dim = this.manifest.embeddingDim;
    if (embeddings.length % dim !== 0) {
      throw new RangeError(`embeddings: ${embeddings.length} values is not a whole number of ${dim}-wide rows`);
    }
    this.checkQNet(qnet);
    const count = embeddings.length / dim;
    const batchSize = options.batchSize ?? DEFAULT_SCORE_BATCH;
    const scores = new Float32Array(count);
    for (let start = 0; start < count; start += batchSize) {
      const end = Math.min(count, start + batchSize);
      const feeds: Record<string, TensorMessage> = {
        // Copies: the buffers are moved to the inference thread, and the caller keeps its arrays.
        [GRAPH_IO.embeddings]: { type: "float32", data: embeddings.slice(start * dim, end * dim), dims: [end - start, dim] },
      };
      qnet.weights.forEach((w, i) => {
        feeds[GRAPH_IO.weight(i)] = { type: "float32", data: w.slice(), dims: [qnet.dims[i]!, qnet.dims[i + 1]!] };
      });
      qnet.biases.forEach((b, j) => {
        feeds[GRAPH_IO.bias(j)] = { type: "float32", data: b.slice(), dims: [b.length] };
      });
      const outputs = await this.inference.run("qnetScorer", feeds);
      scores.set(outputs[GRAPH_IO.scores]!.data as Float32Array, start);
    }
    return scores;
  }

  close(): Promise<void> {
    return this.inference.close();
  }

  private tokenFeeds(texts: readonly string[], maxLength: number): Record<string, TensorMessage> {
    const batch = this.tokenizer.encodeBatch(texts, maxLength);
    const dims = [batch.batchSize, batch.seqLen];
    return {
      [GRAPH_IO.inputIds]: { type: "int64", data: batch.inputIds, dims },
      [GRAPH_IO.attentionMask]: { type: "int64", data: batch.attentionMask, dims },
    };
  }

  /** Cuts query `q`'s q-net out of a query-encoder batch. */
  private qnetAt(outputs: Record<string, TensorMessage>, q: number): QNet {
    const { dims } = this.manifest.qnet;
    const hidden = dims.length - 2;
    const weights = Array.from({ length: hidden + 1 }, (_, i) => {
      const size = dims[i]! * dims[i + 1]!;
      return (outputs[GRAPH_IO.weight(i)]!.data as Float32Array).slice(q * size, (q + 1) * size);
    });
    const biases = Array.from({ length: hidden }, (_, j) => {
      const size = dims[j + 1]!;
      return (outputs[GRAPH_IO.bias(j)]!.data as Float32Array).slice(q * size, (q + 1) * size);
    });
    return { ...this.manifest.qnet, weights, biases };
  }

  private checkMaxLength(maxLength: number): number {
    const limit = this.manifest.bert.maxPositions;
    if (!Number.isInteger(maxLength) || maxLength < 2 || maxLength > limit) {
      throw new RangeError(`max length must be an integer from 2 to ${limit} (the model's position limit), got ${maxLength}`);
    }
    return maxLength;
  }

  private checkQNet(qnet: QNet): void {
    const expected = this.manifest.qnet.dims;
    if (qnet.dims.length !== expected.length || qnet.dims.some((d, i) => d !== expected[i])) {
      throw new RangeError(`q-net dims [${qnet.dims.join(",")}] do not match the model's [${expected.join(",")}]`);
    }
  }
}
