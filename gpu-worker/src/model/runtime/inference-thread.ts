/**
 * The inference thread: owns the onnxruntime sessions and runs them off the main event loop,
 * because `session.run` in onnxruntime-node is synchronous native work. Sessions load lazily,
 * so a process that only embeds documents never loads the query encoder.
 */
import { parentPort, workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { createSession } from "./execution-provider.ts";
import {
  type GraphName,
  type RunReply,
  type RunRequest,
  type TensorMessage,
  type ThreadConfig,
  transferList,
} from "./tensor-message.ts";

const config = workerData as ThreadConfig;
const port = parentPort!;
const sessions = new Map<GraphName, Promise<ort.InferenceSession>>();

function session(graph: GraphName): Promise<ort.InferenceSession> {
  let s = sessions.get(graph);
  if (!s) {
    s = createSession(config.graphs[graph], config.device, config.intraOpThreads).then((created) => {
      port.postMessage({ event: "session", graph, device: created.device });
      return created.session;
    });
    sessions.set(graph, s);
  }
  return s;
}

async function run(request: RunRequest): Promise<RunReply> {
  const s = await session(request.graph);
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(request.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
  const results = await s.run(feeds);
  const outputs: Record<string, TensorMessage> = {};
  for (const [name, t] of Object.entries(results)) {
    outputs[name] = { type: t.type as TensorMessage["type"], data: t.data as TensorMessage["data"], dims: [...t.dims] };
  }
  return { id: request.id, ok: true, outputs };
}

port.on("message", (request: RunRequest) => {
  run(request).then(
    (reply) => {
      const outputs = reply.ok ? Object.values(reply.outputs) : [];
      port.postMessage(reply, transferList(outputs));
    },
    (error: unknown) => port.postMessage({ id: request.id, ok: false, error: (error as Error).message } satisfies RunReply),
  );
});
port.postMessage({ ready: true });
