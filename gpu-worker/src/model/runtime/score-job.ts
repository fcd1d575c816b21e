/**
 * One scoring call inside the inference thread: a registered q-net's tensors and the rows to score.
 * The thread's one scoring function takes it, and so does the ScoreBatcher (score-batcher.ts), which
 * groups concurrent queries' jobs into one batched call.
 */
import type * as ort from "onnxruntime-node";

export interface ScoreJob {
  /** A registered q-net's tensors by GRAPH_IO name: weight(i) [d_i, d_{i+1}] float32, bias(j) [d_{j+1}] float32. */
  qnet: Record<string, ort.Tensor>;
  /** n × dim gathered rows, row-major. */
  embeddings: Float32Array | Uint16Array;
}
