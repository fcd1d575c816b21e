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
  type TensorMessage,
  type ThreadConfig,
  type ThreadReply,
  type ThreadRequest,
  transferList,
} from "./tensor-message.ts";

const config = workerData as ThreadConfig;
const port = parentPort!;
const sessions = new Map<GraphName, Promise<ort.InferenceSession>>();
const qnets = new Map<number, Record<string, ort.Tensor>>();

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

function toOrt(tensors: Record<string, TensorMessage>): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(tensors)) out[name] = new ort.Tensor(t.type, t.data, t.dims);
  return out;
}

async function handle(request: ThreadRequest): Promise<Record<string, TensorMessage>> {
  switch (request.kind) {
    case "registerQNet":
      qnets.set(request.handle, toOrt(request.feeds));
      return {};
    case "releaseQNet":
      qnets.delete(request.handle);
      return {};
    case "run": {
      const extra = request.qnet === undefined ? {} : qnets.get(request.qnet);
      if (!extra) throw new Error(`q-net handle ${request.qnet} is not registered`);
      const results = await (await session(request.graph)).run({ ...toOrt(request.feeds), ...extra });
      const outputs: Record<string, TensorMessage> = {};
      for (const [name, t] of Object.entries(results)) {
        outputs[name] = { type: t.type as TensorMessage["type"], data: t.data as TensorMessage["data"], dims: [...t.dims] };
      }
      return outputs;
    }
  }
}

port.on("message", (request: ThreadRequest) => {
  handle(request).then(
    (outputs) => port.postMessage({ id: request.id, ok: true, outputs } satisfies ThreadReply, transferList(Object.values(outputs))),
    (error: unknown) => port.postMessage({ id: request.id, ok: false, error: (error as Error).message } satisfies ThreadReply),
  );
});
port.postMessage({ ready: true });
