/**
 * The batched q-net scorer graph: Q queries' q-nets, each applied to its own batch of document
 * embeddings, in one run. It computes exactly what ./qnet-scorer.ts computes for one query, with a
 * leading query axis on every input: the layers are batched MatMuls ([Q, n, d_i] × [Q, d_i, d_{i+1}]),
 * so concurrent searches share one call's fixed cost (and, on a GPU, one launch per layer).
 *
 * Inputs: embeddings [queries, docs, d0] (float32, or float16 cast to float32 inside),
 * weight_i [queries, d_i, d_{i+1}], bias_j [queries, 1, d_{j+1}] (float32, broadcast over docs);
 * output: scores float32 [queries, docs]. Queries with fewer rows are padded by the caller
 * (./../runtime/score-batcher.ts); a padded row's score is computed and thrown away, and never
 * changes another row's score, because every op is row-wise.
 */
import { QNET_LAYER_NORM_EPS, type QNetArchitecture, hiddenLayerCount } from "../../../../shared/qnet/types.ts";
import { GRAPH_IO } from "../types.ts";
import { ElemType, GraphBuilder, encodeModel } from "./graph-builder.ts";
import { type QNetScorerOptions, activation, hasResidual } from "./qnet-scorer.ts";

export function buildBatchedQNetScorerGraph(qnet: QNetArchitecture, options: QNetScorerOptions = {}): GraphBuilder {
  validateBatchedArchitecture(qnet);
  const d = qnet.dims;
  const hidden = hiddenLayerCount(qnet);
  const g = new GraphBuilder("qnet_scorer_batched");

  const half = options.embeddingType === "float16";
  const embeddings = g.input(GRAPH_IO.embeddings, half ? ElemType.float16 : ElemType.float, ["queries", "docs", d[0]!]);
  const weights = d.slice(0, -1).map((inSize, i) => g.input(GRAPH_IO.weight(i), ElemType.float, ["queries", inSize, d[i + 1]!]));
  const biases = Array.from({ length: hidden }, (_, j) => g.input(GRAPH_IO.bias(j), ElemType.float, ["queries", 1, d[j + 1]!]));

  let x = half ? g.cast(embeddings, ElemType.float, "embeddings_f32") : embeddings;
  for (let j = 0; j < hidden; j++) {
    const hint = `layer_${j}`;
    let y = activation(g, g.add(g.matmul(x, weights[j]!, `${hint}.matmul`), biases[j]!, `${hint}.linear`), qnet.activation, `${hint}.act`);
    const norm = (v: string, when: string) => g.layerNorm(v, d[j + 1]!, QNET_LAYER_NORM_EPS, undefined, undefined, `${hint}.ln_${when}`);
    if (qnet.doLayerNorm && qnet.layerNormBeforeResidual) y = norm(y, "pre");
    if (hasResidual(qnet, j)) y = g.add(y, x, `${hint}.residual`);
    if (qnet.doLayerNorm && !qnet.layerNormBeforeResidual) y = norm(y, "post");
    x = y;
  }
  const scores = g.matmul(x, weights[hidden]!, "score_column");
  g.output(g.squeeze(scores, [2], "score"), GRAPH_IO.scores, ElemType.float, ["queries", "docs"]);
  return g;
}

/**
 * The batched scorer as ONNX bytes, built in memory from the architecture (it has no initializers
 * worth a file): `ort.InferenceSession.create(bytes, options)` opens it on any execution provider.
 */
export function encodeBatchedQNetScorer(qnet: QNetArchitecture, options: QNetScorerOptions = {}): Uint8Array {
  return encodeModel(buildBatchedQNetScorerGraph(qnet, options));
}

/** The single-query scorer's rules (./qnet-scorer.ts), checked here so a bad shape fails before onnxruntime. */
function validateBatchedArchitecture(qnet: QNetArchitecture): void {
  const d = qnet.dims;
  if (d.length < 2 || d.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error(`batched q-net scorer: dims [${d.join(",")}] must be at least two positive integers`);
  }
  if (d[d.length - 1] !== 1) throw new Error(`batched q-net scorer: the last dim must be 1 (one score), got [${d.join(",")}]`);
  for (let j = 0; j < hiddenLayerCount(qnet); j++) {
    if (hasResidual(qnet, j) && d[j] !== d[j + 1]) {
      throw new Error(`batched q-net scorer: residual on hidden layer ${j} needs equal sizes, got ${d[j]} → ${d[j + 1]}`);
    }
  }
}
