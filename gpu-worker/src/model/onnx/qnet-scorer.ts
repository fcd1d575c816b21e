/**
 * The q-net scorer graph: one query's q-net applied to a batch of document embeddings.
 * This is the hot loop of search, so the graph is kept to exactly what the q-net computes, in the
 * op patterns onnxruntime fuses (MatMul+Add → Gemm, Gemm+activation, Erf-GELU → Gelu).
 *
 * Inputs: embeddings [docs, d0] (float32, or float16 cast to float32), weight_i [in_i, out_i],
 * bias_j [d[j+1]] (float32); output: scores float32 [docs].
 */
import {
  type Activation,
  LEAKY_RELU_SLOPE,
  QNET_LAYER_NORM_EPS,
  type QNetArchitecture,
  hiddenLayerCount,
} from "../../../../shared/qnet/types.ts";
import { GRAPH_IO } from "../types.ts";
import { ElemType, GraphBuilder } from "./graph-builder.ts";

export interface QNetScorerOptions {
  /** Element type of the embeddings input; float16 halves the bytes moved from the store. */
  embeddingType?: "float32" | "float16";
}

export function buildQNetScorerGraph(qnet: QNetArchitecture, options: QNetScorerOptions = {}): GraphBuilder {
  validateScorerArchitecture(qnet);
  const d = qnet.dims;
  const hidden = hiddenLayerCount(qnet);
  const g = new GraphBuilder("qnet_scorer");

  const half = options.embeddingType === "float16";
  const embeddings = g.input(GRAPH_IO.embeddings, half ? ElemType.float16 : ElemType.float, ["docs", d[0]!]);
  const weights = d.slice(0, -1).map((inSize, i) => g.input(GRAPH_IO.weight(i), ElemType.float, [inSize, d[i + 1]!]));
  const biases = Array.from({ length: hidden }, (_, j) => g.input(GRAPH_IO.bias(j), ElemType.float, [d[j + 1]!]));

  let x = half ? g.cast(embeddings, ElemType.float, "embeddings_f32") : embeddings;
  for (let j = 0; j < hidden; j++) {
    x = addHiddenLayer(g, x, weights[j]!, biases[j]!, qnet, { residual: hasResidual(qnet, j), width: d[j + 1]!, hint: `layer_${j}` });
  }
  const scores = g.matmul(x, weights[hidden]!, "score_column");
  g.output(g.squeeze(scores, [1], "score"), GRAPH_IO.scores, ElemType.float, ["docs"]);
  return g;
}

/** act(x·W + b), with the layer norm before or after the residual add as the architecture says. */
function addHiddenLayer(
  g: GraphBuilder,
  x: string,
  weight: string,
  bias: string,
  qnet: QNetArchitecture,
  layer: { residual: boolean; width: number; hint: string },
): string {
  const { hint } = layer;
  let y = activation(g, g.add(g.matmul(x, weight, `${hint}.matmul`), bias, `${hint}.linear`), qnet.activation, `${hint}.act`);
  const norm = (v: string, when: string) => g.layerNorm(v, layer.width, QNET_LAYER_NORM_EPS, undefined, undefined, `${hint}.ln_${when}`);
  if (qnet.doLayerNorm && qnet.layerNormBeforeResidual) y = norm(y, "pre");
  if (layer.residual) y = g.add(y, x, `${hint}.residual`);
  if (qnet.doLayerNorm && !qnet.layerNormBeforeResidual) y = norm(y, "post");
  return y;
}

export function activation(g: GraphBuilder, x: string, kind: Activation, hint: string): string {
  switch (kind) {
    case "relu":
      return g.op("Relu", [x], {}, hint);
    case "gelu":
      return g.gelu(x, hint);
    case "tanh":
      return g.op("Tanh", [x], {}, hint);
    case "sigmoid":
      return g.op("Sigmoid", [x], {}, hint);
    case "leaky_relu":
      return g.op("LeakyRelu", [x], { alpha: LEAKY_RELU_SLOPE }, hint);
    default:
      throw new Error(`q-net scorer: unknown activation ${String(kind)}`);
  }
}

/** Whether hidden layer j adds its input back (the official do_residual / do_residual_on_last). */
export function hasResidual(qnet: QNetArchitecture, j: number): boolean {
  return qnet.doResidual && (j < hiddenLayerCount(qnet) - 1 || qnet.doResidualOnLast);
}

/** Shapes the scorer cannot serve fail here, with the reason, instead of inside onnxruntime. */
function validateScorerArchitecture(qnet: QNetArchitecture): void {
  const d = qnet.dims;
  if (d.length < 2 || d.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error(`q-net scorer: dims [${d.join(",")}] must be at least two positive integers`);
  }
  if (d[d.length - 1] !== 1) throw new Error(`q-net scorer: the last dim must be 1 (one score), got [${d.join(",")}]`);
  const hidden = hiddenLayerCount(qnet);
  for (let j = 0; j < hidden; j++) {
    if (hasResidual(qnet, j) && d[j] !== d[j + 1]) {
      throw new Error(`q-net scorer: residual on hidden layer ${j} needs equal sizes, got ${d[j]} → ${d[j + 1]}`);
    }
  }
}
