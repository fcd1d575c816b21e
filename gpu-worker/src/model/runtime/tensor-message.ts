/**
 * Messages across the worker_threads boundary. Tensors are plain typed arrays plus dims, moved (not
 * copied) with a transfer list. Shared embeddings (SharedArrayBuffer views) are posted, never moved:
 * both threads see the same memory.
 */
import type { QNetArchitecture } from "../../../../shared/qnet/types.ts";

export type TensorType = "int64" | "float32" | "float16";
export type TensorData = BigInt64Array | Float32Array | Uint16Array;

export interface TensorMessage {
  type: TensorType;
  data: TensorData;
  dims: number[];
}

export type GraphName = "queryEncoder" | "docEncoder" | "qnetScorer" | "qnetScorerFp16";

/**
 * - run: run a graph (the encoders).
 * - encodeQueries: run the query encoder and keep each query's q-net in the thread under
 *   `handles[q]`: the ~14 MB of weights per query never cross to the main thread.
 * - registerQNet / releaseQNet: keep (or drop) a q-net's weight and bias tensors under a handle.
 * - score: score embeddings moved with the message; scoreRows: score rows of registered shared
 *   embeddings, gathered in the thread (only the row ids travel).
 * - qnetWeights: a copy of a registered q-net's tensors (includeQNet, /v1/qnet).
 * - gradient: ∇score at one or more embeddings (row-major; shared/qnet/gradient.ts), computed in the thread.
 * - registerEmbeddings / releaseEmbeddings: a shard's embeddings in shared memory, posted once.
 * - stats: what the thread holds, for leak checks.
 */
export type ThreadRequest =
  | { kind: "run"; id: number; graph: GraphName; feeds: Record<string, TensorMessage> }
  | { kind: "encodeQueries"; id: number; handles: number[]; feeds: Record<string, TensorMessage> }
  | { kind: "registerQNet"; id: number; handle: number; feeds: Record<string, TensorMessage> }
  | { kind: "releaseQNet"; id: number; handle: number }
  | { kind: "score"; id: number; qnet: number; feeds: Record<string, TensorMessage> }
  | { kind: "scoreRows"; id: number; qnet: number; embeddings: number; rows: Uint32Array }
  | { kind: "qnetWeights"; id: number; handle: number }
  | { kind: "gradient"; id: number; handle: number; at: Float32Array }
  | { kind: "registerEmbeddings"; id: number; handle: number; data: Float32Array | Uint16Array; dim: number }
  | { kind: "releaseEmbeddings"; id: number; handle: number }
  | { kind: "stats"; id: number };

/** What the inference thread holds. */
export interface ThreadStats {
  qnets: number;
  embeddings: number;
}

export type ThreadReply =
  | { id: number; ok: true; outputs: Record<string, TensorMessage>; stats?: ThreadStats }
  | { id: number; ok: false; error: string };

export type ThreadEvent = { event: "session"; graph: GraphName; device: "cpu" | "cuda" } | { ready: true };

export interface ThreadConfig {
  /** graph name → .onnx path */
  graphs: Record<GraphName, string>;
  device: Device;
  /** ORT intra-op threads; 0 lets ORT use every core. */
  intraOpThreads: number;
  /** The model's q-net architecture: the thread cuts query-encoder batches into q-nets and differentiates them. */
  qnet: QNetArchitecture;
  /** Score concurrent queries' rows in one batched call (score-batcher.ts); false: one query per call; "auto": on CUDA only. */
  scoreBatching: boolean | "auto";
}

/** "auto" uses CUDA when onnxruntime can create a CUDA session, otherwise the CPU. */
export type Device = "auto" | "cpu" | "cuda";

/** Buffers to move with a message: never a SharedArrayBuffer (it is shared, and cannot be moved). */
export function transferList(tensors: Iterable<{ data: ArrayBufferView }>): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const t of tensors) if (t.data.buffer instanceof ArrayBuffer) buffers.add(t.data.buffer);
  return [...buffers];
}
