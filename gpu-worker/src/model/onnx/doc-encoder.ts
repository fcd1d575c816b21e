/**
 * The document encoder graph: input_ids, attention_mask (int64 [B,S]) → embeddings float32 [B, hidden],
 * BERT followed by [CLS] or mask-weighted mean pooling.
 */
import { type BertDims, GRAPH_IO, type Pooling, type TensorMap } from "../types.ts";
import { addBertEncoder } from "./bert.ts";
import { ElemType, GraphBuilder } from "./graph-builder.ts";

export function buildDocEncoderGraph(dims: BertDims, weights: TensorMap, pooling: Pooling): GraphBuilder {
  const g = new GraphBuilder("doc_encoder");
  const inputIds = g.input(GRAPH_IO.inputIds, ElemType.int64, ["batch", "seq"]);
  const attentionMask = g.input(GRAPH_IO.attentionMask, ElemType.int64, ["batch", "seq"]);
  const hidden = addBertEncoder(g, inputIds, attentionMask, dims, weights);
  const pooled = addPooling(g, hidden, attentionMask, pooling);
  g.output(pooled, GRAPH_IO.embeddings, ElemType.float, ["batch", dims.hiddenSize]);
  return g;
}

/** Pools a hidden state [B,S,H] to [B,H]. */
export function addPooling(g: GraphBuilder, hidden: string, attentionMask: string, pooling: Pooling): string {
  switch (pooling) {
    case "cls":
      return g.op("Gather", [hidden, g.int64s("pool.cls_index", [0], [])], { axis: { int: 1 } }, "pool.cls");
    case "mean":
      return addMaskedMean(g, hidden, attentionMask);
    default:
      throw new Error(`unknown pooling ${String(pooling satisfies never)}`);
  }
}

/**
 * sum_s(hidden·mask) / sum_s(mask): the product spec's mask-weighted mean.
 *
 * The official Hypencoder TextEncoder.mean_pool sums *all* positions, padding included
 * (`last_hidden_state.sum(dim=1) / attention_mask.sum(dim=1, keepdim=True)`), so its embedding of a
 * document depends on how much padding its batch had. Both agree on an unpadded document, which is
 * how a document encoded alone is seen; masking makes batched encoding match that.
 * Every real row has at least [CLS], so the count is never 0.
 */
function addMaskedMean(g: GraphBuilder, hidden: string, attentionMask: string): string {
  const mask = g.cast(attentionMask, ElemType.float, "pool.mask");
  const masked = g.mul(hidden, g.unsqueeze(mask, [2], "pool.mask3d"), "pool.masked");
  const sum = g.reduceSum(masked, [1], false, "pool.sum");
  const count = g.reduceSum(mask, [1], true, "pool.count");
  return g.div(sum, count, "pool.mean");
}
