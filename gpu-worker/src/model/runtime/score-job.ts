/**
 * One scoring call inside the inference thread: a registered q-net's tensors and the rows to score.
 * The same shape as the ScoreBatcher's job (score-batcher.ts), so batching across queries plugs in
 * at the thread's one scoring function.
 */
import type * as ort from "onnxruntime-node";

export interface ScoreJob {
  /** A registered q-net's tensors by GRAPH_IO name: weight(i) [d_i, d_{i+1}] float32, bias(j) [d_{j+1}] float32. */
  qnet: Record<string, ort.Tensor>;
  /** n × dim gathered rows, row-major. */
  embeddings: Float32Array | Uint16Array;
}
