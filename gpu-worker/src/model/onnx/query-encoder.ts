/**
 * The query encoder graph: input_ids, attention_mask (int64 [B,S]) → the q-net of each query,
 * weight_i float32 [B, in_i, out_i] and bias_j float32 [B, d[j+1]]: BERT then the hyperhead.
 */
import { GRAPH_IO, type HypencoderSpec, type HypencoderWeights } from "../types.ts";
import { addBertEncoder } from "./bert.ts";
import { ElemType, GraphBuilder } from "./graph-builder.ts";
import { addHyperhead, addHyperheadOutputs } from "./hyperhead.ts";

export function buildQueryEncoderGraph(spec: HypencoderSpec, weights: HypencoderWeights): GraphBuilder {
  const g = new GraphBuilder("query_encoder");
  const inputIds = g.input(GRAPH_IO.inputIds, ElemType.int64, ["batch", "seq"]);
  const attentionMask = g.input(GRAPH_IO.attentionMask, ElemType.int64, ["batch", "seq"]);
  checkHiddenSize(spec, weights);
  const hidden = addBertEncoder(g, inputIds, attentionMask, spec.bert, weights.queryBert);
  addHyperheadOutputs(g, addHyperhead(g, hidden, attentionMask, spec.qnet, weights.hyperhead), spec.qnet);
  return g;
}

/** The hyperhead reads BERT's output, so its key projections must be [in, hiddenSize]. */
function checkHiddenSize(spec: HypencoderSpec, weights: HypencoderWeights): void {
  const h = weights.hyperhead.get("key_projections.0.weight")?.shape[1];
  if (h !== undefined && h !== spec.bert.hiddenSize) {
    throw new Error(`query encoder: BERT hidden size is ${spec.bert.hiddenSize} but the hyperhead's key projections take ${h}`);
  }
}
