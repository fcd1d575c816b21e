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
import type { SharedEmbeddings } from "./shared-embeddings.ts";
import type { Device, GraphName, TensorMessage, ThreadStats } from "./tensor-message.ts";

export interface RuntimeOptions {
  device?: Device;
  /** onnxruntime intra-op threads; defaults to every core. */
  intraOpThreads?: number;
  /**
   * Score the rows of concurrent searches in one batched call (per-query weights, score-batcher.ts).
   * Default "auto": when the scorer runs on CUDA (on the CPU it measured slower); true or false force it.
   */
  scoreBatching?: boolean | "auto";
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

/**
 * A q-net held by the inference thread under a handle: the query encoder's output stays there (or a
 * given QNet is copied there once), and every use is a small message. Release it when done: until
 * then the thread keeps its weights (~14 MB for a 6-layer 768-d net). After release every call
 * rejects; release itself is idempotent and never fails.
 */
export interface PreparedQNet {
  /** The q-net's layer widths (the model's), e.g. for what a gradient costs. */
  readonly dims: readonly number[];
  /**
   * Scores rows of embeddings: float32, or float16 bits (Uint16Array, the index storage type).
   * The array's buffer is moved to the inference thread: pass a copy you no longer need.
   */
  score(embeddings: Float32Array | Uint16Array): Promise<Float32Array>;
  /**
   * Scores rows of a shard's shared embeddings, gathered in the inference thread: only the row
   * ids travel (copied; the caller keeps its array). result[i] belongs to rows[i].
   */
  scoreRows(embeddings: SharedEmbeddings, rows: Uint32Array): Promise<Float32Array>;
  /**
   * ∇score at one or more embeddings (a whole number of dims[0]-value rows; shared/qnet/gradient.ts),
   * computed in the thread; the gradients come back row-major the same way.
   */
  gradient(at: Float32Array): Promise<Float32Array>;
  /** A copy of the weights, for includeQNet and /v1/qnet: the only time they cross to this thread. */
  qnet(): Promise<QNet>;
  release(): Promise<void>;
}

export class HypencoderRuntime {
  private nextQNetHandle = 1;
  /** SharedEmbeddings.id → its registration in the thread. */
  private readonly sharedEmbeddings = new Map<number, Promise<void>>();

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
      qnet: manifest.qnet,
      scoreBatching: options.scoreBatching ?? "auto",
    });
    return new HypencoderRuntime(modelDir, manifest, tokenizer, inference);
  }

  /** The device each loaded graph runs on. */
  get devices(): ReadonlyMap<GraphName, "cpu" | "cuda"> {
    return this.inference.devices;
  }

  /**
   * One prepared q-net per query text, in order: each stays in the inference thread (see
   * PreparedQNet). If any batch fails, the ones already prepared are released and the call rejects.
   */
  async prepareQueries(texts: readonly string[], options: EncodeOptions = {}): Promise<PreparedQNet[]> {
    const maxLength = this.checkMaxLength(options.maxLength ?? this.manifest.maxLength.query);
    const batchSize = options.batchSize ?? DEFAULT_QUERY_BATCH;
    const prepared: PreparedQNet[] = [];
    try {
      for (let start = 0; start < texts.length; start += batchSize) {
        const batch = texts.slice(start, start + batchSize);
        const handles = batch.map(() => this.nextQNetHandle++);
        await this.inference.encodeQueries(handles, this.tokenFeeds(batch, maxLength));
        for (const handle of handles) prepared.push(this.preparedHandle(handle));
        options.onProgress?.(prepared.length, texts.length);
      }
    } catch (error) {
      await Promise.all(prepared.map((p) => p.release()));
      throw error;
    }
    return prepared;
  }

  /** One q-net per query text, copied out of the inference thread (prepareQueries keeps them there). */
  async encodeQueries(texts: readonly string[], options: EncodeOptions = {}): Promise<QNet[]> {
    const prepared = await this.prepareQueries(texts, options);
    try {
      return await Promise.all(prepared.map((p) => p.qnet()));
    } finally {
      await Promise.all(prepared.map((p) => p.release()));
    }
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
   * scores one q-net a dozen times). Release it when done. Queries encoded here need not come
   * back: prepareQueries keeps them in the thread from the start.
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
    return this.preparedHandle(handle);
  }

  /** What the inference thread holds (q-nets and shared embeddings), for leak checks and metrics. */
  threadStats(): Promise<ThreadStats> {
    return this.inference.stats();
  }

  private preparedHandle(handle: number): PreparedQNet {
    const dim = this.manifest.embeddingDim;
    let released: Promise<void> | undefined;
    const live = (): void => {
      if (released) throw new Error(`q-net handle ${handle} is not registered: it was released`);
    };
    return {
      dims: this.manifest.qnet.dims,
      score: async (embeddings) => {
        live();
        if (embeddings.length % dim !== 0) {
          throw new RangeError(`embeddings: ${embeddings.length} values is not a whole number of ${dim}-wide rows`);
        }
        const half = embeddings instanceof Uint16Array;
        return this.inference.score(handle, { type: half ? "float16" : "float32", data: embeddings, dims: [embeddings.length / dim, dim] });
      },
      scoreRows: async (embeddings, rows) => {
        live();
        if (embeddings.dim !== dim) throw new RangeError(`embeddings are ${embeddings.dim}-d, the model's are ${dim}-d`);
        await this.registerEmbeddings(embeddings);
        return this.inference.scoreRows(handle, embeddings.id, rows.slice());
      },
      gradient: async (at) => {
        live();
        const d0 = this.manifest.qnet.dims[0]!;
        if (at.length === 0 || at.length % d0 !== 0) throw new RangeError(`gradient: the q-net expects ${d0}-d inputs, got ${at.length} values`);
        return this.inference.gradient(handle, at.slice());
      },
      qnet: async () => {
        live();
        const tensors = await this.inference.qnetWeights(handle);
        const { dims } = this.manifest.qnet;
        return {
          ...this.manifest.qnet,
          weights: dims.slice(1).map((_, i) => tensors[GRAPH_IO.weight(i)]!.data as Float32Array),
          biases: dims.slice(1, -1).map((_, j) => tensors[GRAPH_IO.bias(j)]!.data as Float32Array),
        };
      },
      release: () => (released ??= this.inference.releaseQNet(handle).catch(() => undefined)),
    };
  }

  /**
   * Posts shared embeddings to the thread the first time this runtime scores them, and drops them
   * there when their owner closes them (the shard was unloaded or evicted).
   */
  private registerEmbeddings(embeddings: SharedEmbeddings): Promise<void> {
    if (embeddings.closed) return Promise.reject(new Error(`shard embeddings ${embeddings.id} were released (the shard was unloaded)`));
    let registered = this.sharedEmbeddings.get(embeddings.id);
    if (!registered) {
      const id = embeddings.id;
      registered = this.inference.registerEmbeddings(id, embeddings.data, embeddings.dim);
      this.sharedEmbeddings.set(id, registered);
      registered.catch(() => {
        if (this.sharedEmbeddings.get(id) === registered) this.sharedEmbeddings.delete(id);
      });
      embeddings.onClose(() => {
        if (this.sharedEmbeddings.delete(id)) void this.inference.releaseEmbeddings(id).catch(() => undefined);
      });
    }
    return registered;
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
