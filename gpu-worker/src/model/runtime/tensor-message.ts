/**
 * Messages across the worker_threads boundary. Tensors are plain typed arrays plus dims, moved (not
 * copied) with a transfer list.
 */
export type TensorType = "int64" | "float32" | "float16";
export type TensorData = BigInt64Array | Float32Array | Uint16Array;

export interface TensorMessage {
  type: TensorType;
  data: TensorData;
  dims: number[];
}

export type GraphName = "queryEncoder" | "docEncoder" | "qnetScorer" | "qnetScorerFp16";

/**
 * - run: run a graph. With `qnet`, the feeds of that registered q-net are added, so a search that
 *   scores a q-net over many batches sends its ~14 MB of weights to the thread once, not per batch.
 * - registerQNet / releaseQNet: keep a q-net's weight and bias tensors in the thread under a handle.
 */
export type ThreadRequest =
  | { kind: "run"; id: number; graph: GraphName; feeds: Record<string, TensorMessage>; qnet?: number }
  | { kind: "registerQNet"; id: number; handle: number; feeds: Record<string, TensorMessage> }
  | { kind: "releaseQNet"; id: number; handle: number };

export type ThreadReply =
  | { id: number; ok: true; outputs: Record<string, TensorMessage> }
  | { id: number; ok: false; error: string };

export type ThreadEvent = { event: "session"; graph: GraphName; device: "cpu" | "cuda" } | { ready: true };

export interface ThreadConfig {
  /** graph name → .onnx path */
  graphs: Record<GraphName, string>;
  device: Device;
  /** ORT intra-op threads; 0 lets ORT use every core. */
  intraOpThreads: number;
}

/** "auto" uses CUDA when onnxruntime can create a CUDA session, otherwise the CPU. */
export type Device = "auto" | "cpu" | "cuda";

/** Buffers to move with a message. */
export function transferList(tensors: Iterable<TensorMessage>): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const t of tensors) buffers.add(t.data.buffer as ArrayBuffer);
  return [...buffers];
}
