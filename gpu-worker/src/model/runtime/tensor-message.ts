/**
 * Tensors as they cross the worker_threads boundary: plain typed arrays plus dims, moved (not
 * copied) with a transfer list.
 */
export type TensorType = "int64" | "float32" | "float16";
export type TensorData = BigInt64Array | Float32Array | Uint16Array;

export interface TensorMessage {
  type: TensorType;
  data: TensorData;
  dims: number[];
}

export type GraphName = "queryEncoder" | "docEncoder" | "qnetScorer";

export interface RunRequest {
  id: number;
  graph: GraphName;
  feeds: Record<string, TensorMessage>;
}

export type RunReply =
  | { id: number; ok: true; outputs: Record<string, TensorMessage> }
  | { id: number; ok: false; error: string };

export interface ThreadConfig {
  /** graph name → .onnx path */
  graphs: Record<GraphName, string>;
  device: Device;
  /** ORT intra-op threads; 0 lets ORT use every core. */
  intraOpThreads: number;
}

/** "auto" uses CUDA when onnxruntime can create a CUDA session, otherwise the CPU. */
export type Device = "auto" | "cpu" | "cuda";

export interface ReadyMessage {
  ready: true;
}

/** Buffers to move with a message. */
export function transferList(tensors: Iterable<TensorMessage>): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const t of tensors) buffers.add(t.data.buffer as ArrayBuffer);
  return [...buffers];
}
