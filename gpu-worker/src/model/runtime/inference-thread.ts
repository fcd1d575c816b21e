/**
 * The inference thread: owns the onnxruntime sessions and runs them off the main event loop,
 * because `session.run` in onnxruntime-node is synchronous native work. Sessions load lazily,
 * so a process that only embeds documents never loads the query encoder.
 *
 * It also holds what a search uses many times, so that it crosses the thread boundary once or never:
 * each query's q-net (cut out of the query encoder's batch here, under a handle the main thread
 * chose), and each loaded shard's embeddings (a SharedArrayBuffer view, posted once). Scoring a
 * shard's rows sends only their ids; the rows are gathered here.
 */
import { parentPort, workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { qnetGradients } from "../../../../shared/qnet/gradient.ts";
import { hiddenLayerCount, type QNet } from "../../../../shared/qnet/types.ts";
import { GRAPH_IO } from "../types.ts";
import { createSession } from "./execution-provider.ts";
import { encodeBatchedQNetScorer } from "../onnx/qnet-scorer-batched.ts";
import { createScoreBatcher } from "./score-batcher.ts";
import type { ScoreJob } from "./score-job.ts";
import {
  type GraphName,
  type TensorMessage,
  type ThreadConfig,
  type ThreadReply,
  type ThreadRequest,
  type ThreadStats,
  transferList,
} from "./tensor-message.ts";

const config = workerData as ThreadConfig;
const port = parentPort!;
const sessions = new Map<GraphName, Promise<ort.InferenceSession>>();
/** The device each created session ended up on. */
const sessionDevices = new Map<GraphName, "cpu" | "cuda">();
const qnets = new Map<number, Record<string, ort.Tensor>>();
const sharedEmbeddings = new Map<number, { data: Float32Array | Uint16Array; dim: number; rowCount: number }>();
const { dims } = config.qnet;
const hidden = hiddenLayerCount(config.qnet);

function session(graph: GraphName): Promise<ort.InferenceSession> {
  let s = sessions.get(graph);
  if (!s) {
    s = createSession(config.graphs[graph], config.device, config.intraOpThreads).then((created) => {
      sessionDevices.set(graph, created.device);
      port.postMessage({ event: "session", graph, device: created.device });
      return created.session;
    });
    sessions.set(graph, s);
  }
  return s;
}

function toOrt(tensors: Record<string, TensorMessage>): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(tensors)) out[name] = new ort.Tensor(t.type, t.data, t.dims);
  return out;
}

function toMessages(results: Record<string, ort.Tensor>): Record<string, TensorMessage> {
  const outputs: Record<string, TensorMessage> = {};
  for (const [name, t] of Object.entries(results)) {
    outputs[name] = { type: t.type as TensorMessage["type"], data: t.data as TensorMessage["data"], dims: [...t.dims] };
  }
  return outputs;
}

function registeredQNet(handle: number): Record<string, ort.Tensor> {
  const tensors = qnets.get(handle);
  if (!tensors) throw new Error(`q-net handle ${handle} is not registered`);
  return tensors;
}

/** Today's path: one q-net over one batch of rows, with the single-query scorer graph. */
async function scoreSingle(job: ScoreJob): Promise<Float32Array> {
  const half = job.embeddings instanceof Uint16Array;
  const input = new ort.Tensor(half ? "float16" : "float32", job.embeddings, [job.embeddings.length / dims[0]!, dims[0]!]);
  const results = await (await session(half ? "qnetScorerFp16" : "qnetScorer")).run({ [GRAPH_IO.embeddings]: input, ...job.qnet });
  return results[GRAPH_IO.scores]!.data as Float32Array;
}

/**
 * Concurrent searches' scoring calls, grouped into one run of the batched scorer graph (per-query
 * weights; built in memory from the architecture, float32 input, which also takes fp16 rows exactly).
 * Its session loads on the first group, on the same device and threads as the other graphs.
 */
const batcher = createScoreBatcher({
  arch: config.qnet,
  dim: dims[0]!,
  single: scoreSingle,
  batchedSession: async () => (await createSession(encodeBatchedQNetScorer(config.qnet, { embeddingType: "float32" }), config.device, config.intraOpThreads)).session,
});

/**
 * Whether scoring calls go through the batcher: "auto" batches when the scorer runs on CUDA only.
 * On the CPU a batched MatMul costs what the separate ones do (bench/reports/batched-scoring.txt)
 * and the grouping's wait and weight stacking made the worker slower, 0.65-0.85× the QPS at
 * concurrency 4-8 (bench/reports/search-qps.txt).
 */
function batching(job: ScoreJob): boolean {
  if (config.scoreBatching !== "auto") return config.scoreBatching;
  return sessionDevices.get(job.embeddings instanceof Uint16Array ? "qnetScorerFp16" : "qnetScorer") === "cuda";
}

/**
 * Every scoring call in the thread goes through here (the `score` and `scoreRows` requests), with
 * the registered q-net's own tensor record (the same object for every call of one query, which the
 * batcher's stacked-weights cache relies on).
 */
function score(job: ScoreJob): Promise<Float32Array> {
  return batching(job) ? batcher.submit(job) : scoreSingle(job);
}

/** The requested rows of shared embeddings, row-major, in request order. */
function gather(handle: number, rows: Uint32Array): Float32Array | Uint16Array {
  const shared = sharedEmbeddings.get(handle);
  if (!shared) throw new Error(`embeddings handle ${handle} is not registered`);
  const { data, dim, rowCount } = shared;
  if (dim !== dims[0]) throw new RangeError(`embeddings are ${dim}-d, the q-net expects ${dims[0]}-d rows`);
  const out = data instanceof Uint16Array ? new Uint16Array(rows.length * dim) : new Float32Array(rows.length * dim);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (row >= rowCount) throw new RangeError(`row ${row} is out of range for a shard of ${rowCount} rows`);
    out.set(data.subarray(row * dim, (row + 1) * dim), i * dim);
  }
  return out;
}

/** Cuts query `q`'s q-net out of a query-encoder batch (copies, so each query's tensors are its own). */
function qnetAt(results: ort.InferenceSession.ReturnType, q: number): Record<string, ort.Tensor> {
  const tensors: Record<string, ort.Tensor> = {};
  for (let i = 0; i <= hidden; i++) {
    const size = dims[i]! * dims[i + 1]!;
    const data = (results[GRAPH_IO.weight(i)]!.data as Float32Array).slice(q * size, (q + 1) * size);
    tensors[GRAPH_IO.weight(i)] = new ort.Tensor("float32", data, [dims[i]!, dims[i + 1]!]);
  }
  for (let j = 0; j < hidden; j++) {
    const size = dims[j + 1]!;
    tensors[GRAPH_IO.bias(j)] = new ort.Tensor("float32", (results[GRAPH_IO.bias(j)]!.data as Float32Array).slice(q * size, (q + 1) * size), [size]);
  }
  return tensors;
}

/** The registered tensors as a QNet (views, no copy), for the evaluator-side code. */
function asQNet(tensors: Record<string, ort.Tensor>): QNet {
  return {
    ...config.qnet,
    weights: Array.from({ length: hidden + 1 }, (_, i) => tensors[GRAPH_IO.weight(i)]!.data as Float32Array),
    biases: Array.from({ length: hidden }, (_, j) => tensors[GRAPH_IO.bias(j)]!.data as Float32Array),
  };
}

const scores = (data: Float32Array): Record<string, TensorMessage> => ({ [GRAPH_IO.scores]: { type: "float32", data, dims: [data.length] } });

async function handle(request: ThreadRequest): Promise<{ outputs: Record<string, TensorMessage>; stats?: ThreadStats }> {
  switch (request.kind) {
    case "run":
      return { outputs: toMessages(await (await session(request.graph)).run(toOrt(request.feeds))) };
    case "encodeQueries": {
      const results = await (await session("queryEncoder")).run(toOrt(request.feeds));
      const batch = results[GRAPH_IO.weight(0)]!.dims[0];
      if (batch !== request.handles.length) throw new Error(`query encoder returned ${batch} q-nets for ${request.handles.length} queries`);
      request.handles.forEach((h, q) => qnets.set(h, qnetAt(results, q)));
      return { outputs: {} };
    }
    case "registerQNet":
      qnets.set(request.handle, toOrt(request.feeds));
      return { outputs: {} };
    case "releaseQNet":
      qnets.delete(request.handle);
      return { outputs: {} };
    case "score": {
      const embeddings = request.feeds[GRAPH_IO.embeddings]!.data as Float32Array | Uint16Array;
      return { outputs: scores(await score({ qnet: registeredQNet(request.qnet), embeddings })) };
    }
    case "scoreRows": {
      const qnet = registeredQNet(request.qnet);
      return { outputs: scores(await score({ qnet, embeddings: gather(request.embeddings, request.rows) })) };
    }
    case "qnetWeights": {
      const outputs: Record<string, TensorMessage> = {};
      for (const [name, t] of Object.entries(registeredQNet(request.handle))) {
        // A copy: the reply's buffers are moved, and the registered tensors stay usable.
        outputs[name] = { type: "float32", data: (t.data as Float32Array).slice(), dims: [...t.dims] };
      }
      return { outputs };
    }
    case "gradient": {
      const gradient = qnetGradients(asQNet(registeredQNet(request.handle)), request.at);
      return { outputs: { gradient: { type: "float32", data: gradient, dims: [gradient.length] } } };
    }
    case "registerEmbeddings":
      sharedEmbeddings.set(request.handle, { data: request.data, dim: request.dim, rowCount: request.data.length / request.dim });
      return { outputs: {} };
    case "releaseEmbeddings":
      sharedEmbeddings.delete(request.handle);
      return { outputs: {} };
    case "stats":
      return { outputs: {}, stats: { qnets: qnets.size, embeddings: sharedEmbeddings.size } };
  }
}

port.on("message", (request: ThreadRequest) => {
  handle(request).then(
    ({ outputs, stats }) =>
      port.postMessage({ id: request.id, ok: true, outputs, ...(stats ? { stats } : {}) } satisfies ThreadReply, transferList(Object.values(outputs))),
    (error: unknown) => port.postMessage({ id: request.id, ok: false, error: (error as Error).message } satisfies ThreadReply),
  );
});
port.postMessage({ ready: true });
