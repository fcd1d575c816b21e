/**
 * The model runtime: load a `<model-dir>` and turn texts into q-nets and document embeddings,
 * and q-nets plus embeddings into scores. Tokenization runs here; the graphs run on the
 * inference thread (CUDA when available, otherwise CPU).
 */
import { availableParallelism } from "node:os";
import type { QNet } from "../../../../shared/qnet/types.ts";
import { graphPath, type ModelManifest, readModelManifest } from "../model-manifest.ts";
import { BertTokenizer } from "../tokenizer/tokenizer.ts";
import { DEFAULT_SCORE_BATCH_ROWS } from "../../search/row-scorer.ts";
import { GRAPH_IO } from "../types.ts";
import { ModelLimitError } from "./errors.ts";
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

/** A q-net held by the inference thread. */
export interface PreparedQNet {
  /**
   * Scores rows of embeddings: float32, or float16 bits (Uint16Array, the index storage type).
   * The array's buffer is moved to the inference thread: pass a copy you no longer need.
   */
  score(embeddings: Float32Array | Uint16Array): Promise<Float32Array>;
  release(): Promise<void>;
}

export class HypencoderRuntime {
  private nextQNetHandle = 1;

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
      (["queryEncoder", "docEncoder", "qnetScorer", "qnetScorerFp16"] as const).map((g) => [g, graphPath(modelDir, g)]),
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
    const prepared = await this.prepareQNet(qnet);
    try {
      const dim = this.manifest.embeddingDim;
      const count = embeddings.length / dim;
      const batchSize = options.batchSize ?? DEFAULT_SCORE_BATCH_ROWS;
      const scores = new Float32Array(count);
      for (let start = 0; start < count; start += batchSize) {
        // slice() copies: the batch's buffer is moved to the inference thread, and the caller keeps its array.
        const batch = embeddings.slice(start * dim, Math.min(count, start + batchSize) * dim);
        scores.set(await prepared.score(batch), start);
      }
      return scores;
    } finally {
      await prepared.release();
    }
  }

  /**
   * Sends a q-net's weights to the inference thread once, for scoring many batches (a graph search
   * scores one q-net a dozen times). Release it when done.
   */
  async prepareQNet(qnet: QNet): Promise<PreparedQNet> {
    this.checkQNet(qnet);
    const handle = this.nextQNetHandle++;
    const feeds: Record<string, TensorMessage> = {};
    qnet.weights.forEach((w, i) => {
      feeds[GRAPH_IO.weight(i)] = { type: "float32", data: w.slice(), dims: [qnet.dims[i]!, qnet.dims[i + 1]!] };
    });
    qnet.biases.forEach((b, j) => {
      feeds[GRAPH_IO.bias(j)] = { type: "float32", data: b.slice(), dims: [b.length] };
    });
    await this.inference.registerQNet(handle, feeds);
    const dim = this.manifest.embeddingDim;
    return {
      score: async (embeddings) => {
        if (embeddings.length % dim !== 0) {
          throw new RangeError(`embeddings: ${embeddings.length} values is not a whole number of ${dim}-wide rows`);
        }
        const half = embeddings instanceof Uint16Array;
        const input: TensorMessage = { type: half ? "float16" : "float32", data: embeddings, dims: [embeddings.length / dim, dim] };
        const outputs = await this.inference.run(half ? "qnetScorerFp16" : "qnetScorer", { [GRAPH_IO.embeddings]: input }, handle);
        return outputs[GRAPH_IO.scores]!.data as Float32Array;
      },
      release: () => this.inference.releaseQNet(handle),
    };
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
      throw new ModelLimitError(`max length must be an integer from 2 to ${limit} (the model's position limit), got ${maxLength}`);
    }
    return maxLength;
  }

  /** The scorer graphs are built for the model's architecture: a q-net must match it exactly. */
  private checkQNet(qnet: QNet): void {
    const model = this.manifest.qnet;
    if (qnet.dims.length !== model.dims.length || qnet.dims.some((d, i) => d !== model.dims[i])) {
      throw new RangeError(`q-net dims [${qnet.dims.join(",")}] do not match the model's [${model.dims.join(",")}]`);
    }
    for (const flag of ["activation", "doLayerNorm", "doResidual", "doResidualOnLast", "layerNormBeforeResidual"] as const) {
      if (qnet[flag] !== model[flag]) throw new RangeError(`q-net ${flag} ${qnet[flag]} does not match the model's ${model[flag]}`);
    }
  }
}
