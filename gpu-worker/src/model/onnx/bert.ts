/**
 * The BERT encoder (HF BertModel in eval mode) as ONNX ops, added to a caller's graph.
 *
 * The graph keeps the op pattern of PyTorch's BERT exports (MatMul+Add, Reshape/Transpose into
 * heads, Div by √headDim, additive mask, Softmax, LayerNormalization, Erf GELU) and keeps every
 * shape inferable as [batch, seq, hidden], because that is what ONNX Runtime's CPU optimizer needs
 * to fuse it (residual Add+LayerNormalization → SkipLayerNormalization, the Div and K transpose into
 * the scores MatMul). Q, K and V stay three MatMuls: one fused [H,3H] MatMul + Split was within
 * measurement noise on CPU at 1×64 tokens, and three is the pattern other tools recognise.
 */
import type { BertDims, Float32Tensor, TensorMap } from "../types.ts";
import { ElemType, type GraphBuilder } from "./graph-builder.ts";

/**
 * HF's additive attention mask value for padding: torch.finfo(torch.float32).min. (ORT's Attention
 * fusion only recognises −10000, but it also rewrites the mask into per-row lengths, which assumes
 * right padding; keeping HF's value keeps the graph exact for any mask.)
 */
const FLOAT32_MIN = -3.4028234663852886e38;

/**
 * Adds the encoder to `g` and returns the last hidden state, float32 [B, S, hidden].
 * `inputIds` and `attentionMask` are int64 [B, S] values already in the graph. Token types are all 0
 * and positions are 0..S−1, as BertModel does when given only input_ids and attention_mask.
 */
export function addBertEncoder(
  g: GraphBuilder,
  inputIds: string,
  attentionMask: string,
  dims: BertDims,
  weights: TensorMap,
): string {
  validateDims(dims);
  const w = weightLookup(weights);
  const maskBias = addAttentionMaskBias(g, attentionMask);
  let hidden = addEmbeddings(g, inputIds, dims, w);
  for (let layer = 0; layer < dims.numLayers; layer++) {
    hidden = addLayer(g, hidden, maskBias, dims, w, layer);
  }
  return hidden;
}

/** Fetches a weight, checking that it exists and has the expected shape. */
type WeightLookup = (name: string, shape: number[]) => Float32Tensor;

function weightLookup(weights: TensorMap): WeightLookup {
  return (name, shape) => {
    const t = weights.get(name);
    if (!t) throw new Error(`BERT weight ${name} is missing`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`BERT weight ${name} has shape [${t.shape.join(",")}], expected [${shape.join(",")}]`);
    }
    return t;
  };
}

function validateDims(dims: BertDims): void {
  if (dims.hiddenSize % dims.numHeads !== 0) {
    throw new Error(`BERT hidden size ${dims.hiddenSize} is not divisible by ${dims.numHeads} heads`);
  }
  if (dims.typeVocabSize < 1) throw new Error("BERT needs at least one token type embedding");
}

/** word + token type 0 + position embeddings, then LayerNorm. */
function addEmbeddings(g: GraphBuilder, inputIds: string, dims: BertDims, w: WeightLookup): string {
  const H = dims.hiddenSize;
  const words = w("embeddings.word_embeddings.weight", [dims.vocabSize, H]);
  const positions = w("embeddings.position_embeddings.weight", [dims.maxPositions, H]);
  const tokenTypes = w("embeddings.token_type_embeddings.weight", [dims.typeVocabSize, H]);

  const wordEmb = g.op("Gather", [g.initializer("emb.words", words.data, words.shape), inputIds], { axis: { int: 0 } }, "emb.word");
  // Every token has type 0, so its embedding is one constant row.
  const withType = g.add(wordEmb, g.initializer("emb.token_type0", tokenTypes.data.slice(0, H), [H]), "emb.word_type");
  // Position ids are 0..S−1 in every row: a cumulative sum of ones shaped like input_ids, minus one.
  // (Slicing the first S table rows would be cheaper, but shape inference cannot see that the slice
  // has S rows, and ORT's fusions (SkipLayerNormalization, ...) need [batch, seq, hidden] everywhere.)
  // A sequence longer than maxPositions makes the Gather fail; the tokenizer truncates before that.
  const one = g.int64s("emb.one", [1], []);
  const ones = g.add(g.mul(inputIds, g.int64s("emb.zero", [0], []), "emb.zeros"), one, "emb.ones");
  const positionIds = g.sub(g.op("CumSum", [ones, g.int64s("emb.seq_axis", [1], [])], {}, "emb.cumsum"), one, "emb.position_ids");
  const positionRows = g.op("Gather", [g.initializer("emb.positions", positions.data, positions.shape), positionIds], { axis: { int: 0 } }, "emb.position");
  const sum = g.add(withType, positionRows, "emb.sum");
  return addLayerNorm(g, sum, dims, w, "embeddings.LayerNorm", "emb.ln");
}

/** (1 − mask)·float32.min as float32 [B, 1, 1, S], added to every layer's attention scores. */
function addAttentionMaskBias(g: GraphBuilder, attentionMask: string): string {
  const mask = g.cast(attentionMask, ElemType.float, "mask.float");
  const inverted = g.sub(g.floats("mask.one", [1], []), mask, "mask.inverted");
  const bias = g.mul(inverted, g.floats("mask.min", [FLOAT32_MIN], []), "mask.bias2d");
  return g.unsqueeze(bias, [1, 2], "mask.bias");
}

function addLayer(g: GraphBuilder, x: string, maskBias: string, dims: BertDims, w: WeightLookup, layer: number): string {
  const H = dims.hiddenSize;
  const I = dims.intermediateSize;
  const p = `encoder.layer.${layer}`;
  const hint = `l${layer}`;

  const context = addSelfAttention(g, x, maskBias, dims, w, layer);
  const attnOut = addLinear(g, context, w, `${p}.attention.output.dense`, [H, H], `${hint}.attn_out`);
  const attnNorm = addLayerNorm(g, g.add(attnOut, x, `${hint}.attn_residual`), dims, w, `${p}.attention.output.LayerNorm`, `${hint}.attn_ln`);

  const inter = g.gelu(addLinear(g, attnNorm, w, `${p}.intermediate.dense`, [I, H], `${hint}.ffn_in`), `${hint}.gelu`);
  const ffnOut = addLinear(g, inter, w, `${p}.output.dense`, [H, I], `${hint}.ffn_out`);
  return addLayerNorm(g, g.add(ffnOut, attnNorm, `${hint}.ffn_residual`), dims, w, `${p}.output.LayerNorm`, `${hint}.ffn_ln`);
}

/** Multi-head self-attention up to (not including) the output projection: [B,S,H] → [B,S,H]. */
function addSelfAttention(g: GraphBuilder, x: string, maskBias: string, dims: BertDims, w: WeightLookup, layer: number): string {
  const H = dims.hiddenSize;
  const heads = dims.numHeads;
  const headDim = H / heads;
  const p = `encoder.layer.${layer}.attention.self`;
  const hint = `l${layer}.attn`;

  const [q, k, v] = (["query", "key", "value"] as const).map((part) =>
    addLinear(g, x, w, `${p}.${part}`, [H, H], `${hint}.${part[0]}`),
  ) as [string, string, string];
  // [B,S,H] → [B,S,heads,headDim] → [B,heads,S,headDim] (K goes straight to [B,heads,headDim,S]).
  const toHeads = (t: string, perm: number[], name: string) =>
    g.transpose(g.reshape(t, [0, 0, heads, headDim], `${hint}.${name}_split`), perm, `${hint}.${name}_heads`);
  const qh = toHeads(q, [0, 2, 1, 3], "q");
  const kt = toHeads(k, [0, 2, 3, 1], "k");
  const vh = toHeads(v, [0, 2, 1, 3], "v");

  const scores = g.div(g.matmul(qh, kt, `${hint}.qk`), g.floats(`${hint}.sqrt_d`, [Math.sqrt(headDim)], []), `${hint}.scores`);
  const probs = g.op("Softmax", [g.add(scores, maskBias, `${hint}.masked`)], { axis: { int: 3 } }, `${hint}.probs`);
  const context = g.matmul(probs, vh, `${hint}.context`);
  return g.reshape(g.transpose(context, [0, 2, 1, 3], `${hint}.context_t`), [0, 0, H], `${hint}.context_merged`);
}

/** A torch Linear read from `<prefix>.weight` [out, in] and `<prefix>.bias` [out]. */
function addLinear(g: GraphBuilder, x: string, w: WeightLookup, prefix: string, shape: [number, number], hint: string): string {
  return g.linear(x, w(`${prefix}.weight`, shape), w(`${prefix}.bias`, [shape[0]]), hint);
}

function addLayerNorm(g: GraphBuilder, x: string, dims: BertDims, w: WeightLookup, prefix: string, hint: string): string {
  const H = dims.hiddenSize;
  return g.layerNorm(x, H, dims.layerNormEps, w(`${prefix}.weight`, [H]).data, w(`${prefix}.bias`, [H]).data, hint);
}
