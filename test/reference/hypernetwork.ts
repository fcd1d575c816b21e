/**
 * A deliberately plain reference of the Hypencoder hypernetwork ("hyperhead") and of the q-net it
 * produces: loops over rows, float64 accumulation, no tricks, and no code shared with the ONNX
 * graphs it checks. It follows the official implementation step by step:
 *
 *   slot s (weights first, then biases) projects the BERT output to keys and values of width in_s;
 *   learned query rows attend over the unmasked tokens (logits scaled by 1/sqrt(out_s));
 *   the attended rows go through relu → layer norm (no scale/bias) → Linear(in_s → in_s) → + a base.
 */
import type { Float32Tensor, TensorMap } from "../../gpu-worker/src/model/types.ts";
import {
  type Activation,
  LEAKY_RELU_SLOPE,
  QNET_LAYER_NORM_EPS,
  type QNet,
  type QNetArchitecture,
} from "../../shared/qnet/types.ts";

export interface ReferenceHyperheadOutput {
  /** weights[i] is [in_i, out_i] row-major (the transpose of the hypernetwork's [out, in]). */
  weights: Float32Array[];
  biases: Float32Array[];
}

/** One query: `hidden` is S rows of h floats, `mask` S zeros and ones. */
export function referenceHyperhead(
  hidden: Float32Array[],
  mask: number[],
  qnet: QNetArchitecture,
  weights: TensorMap,
): ReferenceHyperheadOutput {
  const d = qnet.dims;
  const hiddenLayers = d.length - 2;
  const tokens = hidden.map((row) => Float64Array.from(row));
  const weightSlots = hiddenLayers + 1;

  const outWeights: Float32Array[] = [];
  for (let i = 0; i <= hiddenLayers; i++) {
    const rows = hyperSlot(tokens, mask, weights, {
      slot: i,
      queries: get(weights, `weight_query_embeddings.${i}`),
      projection: `weight_hyper_projection.${i}`,
      base: get(weights, `hyper_base_matrices.${i}`),
      outSize: d[i + 1]!,
    });
    // rows is [out][in]; the q-net applies x·Wᵀ, so store Wᵀ as [in][out].
    const inSize = d[i]!;
    const outSize = d[i + 1]!;
    const wt = new Float32Array(inSize * outSize);
    for (let o = 0; o < outSize; o++) for (let k = 0; k < inSize; k++) wt[k * outSize + o] = rows[o]![k]!;
    outWeights.push(wt);
  }

  const outBiases: Float32Array[] = [];
  for (let j = 0; j < hiddenLayers; j++) {
    const rows = hyperSlot(tokens, mask, weights, {
      slot: weightSlots + j,
      queries: get(weights, `bias_query_embeddings.${j}`),
      projection: `bias_hyper_projection.${j}`,
      base: get(weights, `hyper_base_vectors.${j}`),
      outSize: 1,
    });
    outBiases.push(Float32Array.from(rows[0]!));
  }
  return { weights: outWeights, biases: outBiases };
}

interface SlotParams {
  /** Index into key_projections / value_projections. */
  slot: number;
  /** [1, out, in] (or [1, 1, in] for a bias slot). */
  queries: Float32Tensor;
  /** Prefix of the Linear(in → in) applied after the layer norm. */
  projection: string;
  /** [1, out, in] or [1, in]: added at the end. */
  base: Float32Tensor;
  /** Rows produced: the q-net layer's output size (1 for a bias slot); the logit scale is 1/sqrt of it. */
  outSize: number;
}

/** The slot's [out][in] result rows. */
function hyperSlot(tokens: Float64Array[], mask: number[], weights: TensorMap, p: SlotParams): Float64Array[] {
  const keyW = get(weights, `key_projections.${p.slot}.weight`);
  const keyB = get(weights, `key_projections.${p.slot}.bias`);
  const valW = get(weights, `value_projections.${p.slot}.weight`);
  const valB = get(weights, `value_projections.${p.slot}.bias`);
  const projW = get(weights, `${p.projection}.weight`);
  const projB = get(weights, `${p.projection}.bias`);
  const inSize = keyW.shape[0]!;

  const keys = tokens.map((t) => linear(keyW, keyB, t));
  const values = tokens.map((t) => linear(valW, valB, t));
  const scale = 1 / Math.sqrt(p.outSize);

  const rows: Float64Array[] = [];
  for (let r = 0; r < p.outSize; r++) {
    const query = p.queries.data.subarray(r * inSize, (r + 1) * inSize);
    // Softmax over the unmasked tokens only (masked ones get −inf logits, i.e. zero weight).
    const logits = keys.map((k, t) => (mask[t] ? dot(query, k) * scale : -Infinity));
    const max = Math.max(...logits);
    const exps = logits.map((l) => (l === -Infinity ? 0 : Math.exp(l - max)));
    const total = exps.reduce((a, b) => a + b, 0);

    const attended = new Float64Array(inSize);
    exps.forEach((e, t) => {
      for (let k = 0; k < inSize; k++) attended[k] += (e / total) * values[t]![k]!;
    });
    for (let k = 0; k < inSize; k++) attended[k] = Math.max(0, attended[k]!);

    const projected = linear(projW, projB, layerNorm(attended));
    for (let k = 0; k < inSize; k++) projected[k] += p.base.data[r * inSize + k]!;
    rows.push(projected);
  }
  return rows;
}

/** The q-net's score for one document embedding `x`. */
export function referenceQNetScore(qnet: QNet, x: Float32Array): number {
  const d = qnet.dims;
  const hiddenLayers = d.length - 2;
  let current: Float64Array = Float64Array.from(x);
  for (let j = 0; j < hiddenLayers; j++) {
    const layer = matVec(current, qnet.weights[j]!, d[j]!, d[j + 1]!);
    let y: Float64Array = layer.map((v, o) => activate(v + qnet.biases[j]![o]!, qnet.activation));
    if (qnet.doLayerNorm && qnet.layerNormBeforeResidual) y = layerNorm(y);
    const isLast = j === hiddenLayers - 1;
    if (qnet.doResidual && (!isLast || qnet.doResidualOnLast)) y = y.map((v, o) => v + current[o]!);
    if (qnet.doLayerNorm && !qnet.layerNormBeforeResidual) y = layerNorm(y);
    current = y;
  }
  return matVec(current, qnet.weights[hiddenLayers]!, d[hiddenLayers]!, 1)[0]!;
}

/** x·W with W [in, out] row-major. */
function matVec(x: Float64Array, w: Float32Array, inSize: number, outSize: number): Float64Array {
  const y = new Float64Array(outSize);
  for (let k = 0; k < inSize; k++) for (let o = 0; o < outSize; o++) y[o] += x[k]! * w[k * outSize + o]!;
  return y;
}

/** torch.nn.Linear on one row: W is [out, in]. */
function linear(w: Float32Tensor, b: Float32Tensor, x: Float64Array): Float64Array {
  const [outSize, inSize] = w.shape as [number, number];
  const y = new Float64Array(outSize);
  for (let o = 0; o < outSize; o++) {
    let acc = b.data[o]!;
    for (let k = 0; k < inSize; k++) acc += w.data[o * inSize + k]! * x[k]!;
    y[o] = acc;
  }
  return y;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let acc = 0;
  for (let k = 0; k < a.length; k++) acc += a[k]! * b[k]!;
  return acc;
}

/** F.layer_norm without scale or bias: biased variance, eps inside the square root. */
function layerNorm(x: Float64Array): Float64Array {
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
  const inv = 1 / Math.sqrt(variance + QNET_LAYER_NORM_EPS);
  return x.map((v) => (v - mean) * inv);
}

function activate(v: number, activation: Activation): number {
  switch (activation) {
    case "relu":
      return Math.max(0, v);
    case "gelu":
      return 0.5 * v * (1 + erf(v / Math.SQRT2));
    case "tanh":
      return Math.tanh(v);
    case "sigmoid":
      return 1 / (1 + Math.exp(-v));
    case "leaky_relu":
      return v >= 0 ? v : LEAKY_RELU_SLOPE * v;
  }
}

/** erf to ~1e-14: Maclaurin series for |x| < 3, the erfc continued fraction beyond. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 100 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * sum * (2 / Math.sqrt(Math.PI));
  }
  // erfc(x) = exp(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated from the tail.
  let frac = ax;
  for (let n = 60; n >= 1; n--) frac = ax + n / 2 / frac;
  return Math.sign(x) * (1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / frac);
}

function get(weights: TensorMap, name: string): Float32Tensor {
  const t = weights.get(name);
  if (!t) throw new Error(`reference hyperhead: missing tensor ${name}`);
  return t;
}
