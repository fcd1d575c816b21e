/**
 * A deliberately plain BERT forward pass (HF BertModel, eval mode) in float64 loops, one sequence at a
 * time, used by tests as ground truth for the ONNX graphs. It shares no code with the graph builders:
 * weights are read straight from the torch-layout tensors, and every step is written out.
 */
import type { BertDims, Float32Tensor, Pooling, TensorMap } from "../../gpu-worker/src/model/types.ts";

/** HF's additive mask for padded keys: torch.finfo(torch.float32).min. */
const MASK_VALUE = -3.4028234663852886e38;

/** Hidden states of one sequence, one Float32Array of length hidden per position. */
export function referenceBertForward(ids: number[], mask: number[], dims: BertDims, weights: TensorMap): Float32Array[] {
  if (ids.length !== mask.length) throw new Error("ids and mask differ in length");
  const H = dims.hiddenSize;
  const get = (name: string): Float32Tensor => {
    const t = weights.get(name);
    if (!t) throw new Error(`reference: missing weight ${name}`);
    return t;
  };

  // Embeddings: word[id] + token_type[0] + position[s], then LayerNorm.
  const word = get("embeddings.word_embeddings.weight").data;
  const pos = get("embeddings.position_embeddings.weight").data;
  const type = get("embeddings.token_type_embeddings.weight").data;
  let x: number[][] = ids.map((id, s) => {
    const row = new Array<number>(H);
    for (let h = 0; h < H; h++) row[h] = word[id * H + h]! + type[h]! + pos[s * H + h]!;
    return row;
  });
  x = x.map((row) => layerNorm(row, get("embeddings.LayerNorm.weight").data, get("embeddings.LayerNorm.bias").data, dims.layerNormEps));

  for (let l = 0; l < dims.numLayers; l++) {
    const p = `encoder.layer.${l}`;
    const lin = (rows: number[][], name: string) => rows.map((r) => linear(r, get(`${name}.weight`), get(`${name}.bias`).data));
    const ctx = selfAttention(lin(x, `${p}.attention.self.query`), lin(x, `${p}.attention.self.key`), lin(x, `${p}.attention.self.value`), mask, dims.numHeads);
    const attnOut = lin(ctx, `${p}.attention.output.dense`);
    const a = attnOut.map((r, s) =>
      layerNorm(addRows(r, x[s]!), get(`${p}.attention.output.LayerNorm.weight`).data, get(`${p}.attention.output.LayerNorm.bias`).data, dims.layerNormEps),
    );
    const inter = lin(a, `${p}.intermediate.dense`).map((r) => r.map(gelu));
    const out = lin(inter, `${p}.output.dense`);
    x = out.map((r, s) => layerNorm(addRows(r, a[s]!), get(`${p}.output.LayerNorm.weight`).data, get(`${p}.output.LayerNorm.bias`).data, dims.layerNormEps));
  }
  return x.map((r) => Float32Array.from(r));
}

/** [CLS] vector, or the mean over positions where mask is 1. */
export function referencePool(hidden: Float32Array[], mask: number[], pooling: Pooling): Float32Array {
  if (pooling === "cls") return Float32Array.from(hidden[0]!);
  const H = hidden[0]!.length;
  const sum = new Float64Array(H);
  let count = 0;
  hidden.forEach((row, s) => {
    if (mask[s] === 0) return;
    count++;
    for (let h = 0; h < H; h++) sum[h]! += row[h]!;
  });
  return Float32Array.from(sum, (v) => v / count);
}

function selfAttention(q: number[][], k: number[][], v: number[][], mask: number[], heads: number): number[][] {
  const S = q.length;
  const H = q[0]!.length;
  const d = H / heads;
  const out = q.map(() => new Array<number>(H).fill(0));
  for (let head = 0; head < heads; head++) {
    const off = head * d;
    for (let i = 0; i < S; i++) {
      const scores = new Array<number>(S);
      for (let j = 0; j < S; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[i]![off + c]! * k[j]![off + c]!;
        scores[j] = dot / Math.sqrt(d) + (1 - mask[j]!) * MASK_VALUE;
      }
      const max = Math.max(...scores);
      const exps = scores.map((s) => Math.exp(s - max));
      const total = exps.reduce((a, b) => a + b, 0);
      for (let j = 0; j < S; j++) {
        const p = exps[j]! / total;
        for (let c = 0; c < d; c++) out[i]![off + c]! += p * v[j]![off + c]!;
      }
    }
  }
  return out;
}

/** y = W·x + b with W in torch layout [out, in]. */
function linear(x: number[], weight: Float32Tensor, bias: Float32Array): number[] {
  const [outDim, inDim] = weight.shape as [number, number];
  const y = new Array<number>(outDim);
  for (let o = 0; o < outDim; o++) {
    let acc = bias[o]!;
    for (let i = 0; i < inDim; i++) acc += weight.data[o * inDim + i]! * x[i]!;
    y[o] = acc;
  }
  return y;
}

function layerNorm(x: number[], gamma: Float32Array, beta: Float32Array, eps: number): number[] {
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
  const inv = 1 / Math.sqrt(variance + eps);
  return x.map((v, i) => (v - mean) * inv * gamma[i]! + beta[i]!);
}

function addRows(a: number[], b: number[]): number[] {
  return a.map((v, i) => v + b[i]!);
}

/** Exact GELU: 0.5·x·(1 + erf(x/√2)). */
function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** erf via Numerical Recipes' erfc Chebyshev fit (relative error < 1.2e-7, ample for float32 checks). */
function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const poly =
    -z * z - 1.26551223 +
    t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const erfc = t * Math.exp(poly);
  return x >= 0 ? 1 - erfc : erfc - 1;
}
