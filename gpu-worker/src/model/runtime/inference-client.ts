/**
 * Main-thread side of the inference thread: sends run requests, matches replies by id, and fails
 * every pending request if the thread dies (never a silent hang).
 */
import { Worker } from "node:worker_threads";
import { GRAPH_IO } from "../types.ts";
import {
  type GraphName,
  type TensorMessage,
  type ThreadConfig,
  type ThreadEvent,
  type ThreadReply,
  type ThreadRequest,
  type ThreadStats,
  transferList,
} from "./tensor-message.ts";

/** A request without its id: the client numbers requests itself. */
type Request = ThreadRequest extends infer R ? (R extends ThreadRequest ? Omit<R, "id"> : never) : never;

type Reply = Extract<ThreadReply, { ok: true }>;
type Pending = { resolve: (reply: Reply) => void; reject: (error: Error) => void };

const EMBEDDINGS = GRAPH_IO.embeddings;

function scoresOf(reply: Reply): Float32Array {
  return reply.outputs[GRAPH_IO.scores]!.data as Float32Array;
}

export class InferenceClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  /** Device each graph's session ended up on, once loaded. */
  readonly devices = new Map<GraphName, "cpu" | "cuda">();

  private constructor(config: ThreadConfig) {
    this.worker = new Worker(new URL("./inference-thread-entry.mjs", import.meta.url), { workerData: config });
    this.worker.on("message", (message: ThreadReply | ThreadEvent) => {
      if ("event" in message) this.devices.set(message.graph, message.device);
      else if ("id" in message) this.settle(message);
    });
    this.worker.on("error", (error) => this.fail(error));
    this.worker.on("exit", (code) => this.fail(new Error(`inference thread exited (code ${code})`)));
  }

  static async start(config: ThreadConfig): Promise<InferenceClient> {
    const client = new InferenceClient(config);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: unknown) => {
        if (message && typeof message === "object" && "ready" in message) {
          client.worker.off("message", onMessage);
          client.worker.off("error", reject);
          resolve();
        }
      };
      client.worker.on("message", onMessage);
      client.worker.once("error", reject);
    });
    return client;
  }

  /** Runs a graph. Feed buffers are moved to the thread. */
  async run(graph: GraphName, feeds: Record<string, TensorMessage>): Promise<Record<string, TensorMessage>> {
    return (await this.request({ kind: "run", graph, feeds })).outputs;
  }

  /** Runs the query encoder and keeps query q's q-net in the thread under handles[q]. */
  async encodeQueries(handles: number[], feeds: Record<string, TensorMessage>): Promise<void> {
    await this.request({ kind: "encodeQueries", handles, feeds });
  }

  /** Keeps a q-net's tensors in the thread under `handle` (buffers are moved). */
  async registerQNet(handle: number, feeds: Record<string, TensorMessage>): Promise<void> {
    await this.request({ kind: "registerQNet", handle, feeds });
  }

  /** Resolves without asking once the thread is gone: a dead thread holds nothing. */
  async releaseQNet(handle: number): Promise<void> {
    if (this.failure) return;
    await this.request({ kind: "releaseQNet", handle });
  }

  /** Scores rows moved with the call (float32, or float16 bits as a Uint16Array). */
  async score(qnet: number, embeddings: TensorMessage): Promise<Float32Array> {
    return scoresOf(await this.request({ kind: "score", qnet, feeds: { [EMBEDDINGS]: embeddings } }));
  }

  /** Scores rows of registered shared embeddings; `rows` is moved (pass a copy). */
  async scoreRows(qnet: number, embeddings: number, rows: Uint32Array): Promise<Float32Array> {
    return scoresOf(await this.request({ kind: "scoreRows", qnet, embeddings, rows }, [rows.buffer as ArrayBuffer]));
  }

  /** A copy of a registered q-net's tensors, by GRAPH_IO name. */
  async qnetWeights(handle: number): Promise<Record<string, TensorMessage>> {
    return (await this.request({ kind: "qnetWeights", handle })).outputs;
  }

  /** ∇score of a registered q-net at `at` (moved). */
  async gradient(handle: number, at: Float32Array): Promise<Float32Array> {
    const reply = await this.request({ kind: "gradient", handle, at }, [at.buffer as ArrayBuffer]);
    return reply.outputs.gradient!.data as Float32Array;
  }

  /** Posts a SharedArrayBuffer view to the thread once (shared, not copied). */
  async registerEmbeddings(handle: number, data: Float32Array | Uint16Array, dim: number): Promise<void> {
    await this.request({ kind: "registerEmbeddings", handle, data, dim });
  }

  async releaseEmbeddings(handle: number): Promise<void> {
    if (this.failure) return;
    await this.request({ kind: "releaseEmbeddings", handle });
  }

  async stats(): Promise<ThreadStats> {
    return (await this.request({ kind: "stats" })).stats!;
  }

  private request(request: Request, transfer?: ArrayBuffer[]): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const moved = transfer ?? transferList("feeds" in request ? Object.values(request.feeds) : []);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id }, moved);
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error("inference runtime closed");
    await this.worker.terminate();
  }

  private settle(reply: ThreadReply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    if (reply.ok) pending.resolve(reply);
    else pending.reject(new Error(reply.error));
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const pending of this.pending.values()) pending.reject(this.failure);
    this.pending.clear();
  }
}
