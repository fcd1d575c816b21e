/**
 * Main-thread side of the inference thread: sends run requests, matches replies by id, and fails
 * every pending request if the thread dies (never a silent hang).
 */
import { Worker } from "node:worker_threads";
import {
  type GraphName,
  type TensorMessage,
  type ThreadConfig,
  type ThreadEvent,
  type ThreadReply,
  type ThreadRequest,
  transferList,
} from "./tensor-message.ts";

/** A request without its id: the client numbers requests itself. */
type Request = ThreadRequest extends infer R ? (R extends ThreadRequest ? Omit<R, "id"> : never) : never;

type Pending = { resolve: (outputs: Record<string, TensorMessage>) => void; reject: (error: Error) => void };

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

  /** Runs a graph, adding a registered q-net's feeds when `qnet` is given. Feed buffers are moved to the thread. */
  run(graph: GraphName, feeds: Record<string, TensorMessage>, qnet?: number): Promise<Record<string, TensorMessage>> {
    return this.request({ kind: "run", graph, feeds, ...(qnet === undefined ? {} : { qnet }) });
  }

  /** Keeps a q-net's tensors in the thread under `handle` (buffers are moved). */
  async registerQNet(handle: number, feeds: Record<string, TensorMessage>): Promise<void> {
    await this.request({ kind: "registerQNet", handle, feeds });
  }

  async releaseQNet(handle: number): Promise<void> {
    await this.request({ kind: "releaseQNet", handle });
  }

  private request(request: Request): Promise<Record<string, TensorMessage>> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const feeds = "feeds" in request ? Object.values(request.feeds) : [];
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id }, transferList(feeds));
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
    if (reply.ok) pending.resolve(reply.outputs);
    else pending.reject(new Error(reply.error));
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const pending of this.pending.values()) pending.reject(this.failure);
    this.pending.clear();
  }
}
