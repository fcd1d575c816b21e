/**
 * The gradient of a q-net's score with respect to its input embedding, at one point.
 *
 * Why: a q-net is not an inner product, but near any point x it is one to first order:
 *   score(y) ≈ score(x) + ∇score(x) · (y − x).
 * So ∇score(x) is a query vector in document space (a "proxy"), and the documents with the largest
 * inner product with it are where the q-net's score rises fastest from x. Graph search uses it to
 * find entry points near the answer with an inner-product index (one dot product per candidate,
 * instead of one q-net evaluation); see gpu-worker/src/search/graph-search.ts, variant "proxy".
 *
 * Same semantics as ./evaluate.ts (whose header states them), in float64, by reverse-mode
 * differentiation: one forward pass that keeps each layer's pre-activation and normalised values,
 * then one backward pass. Cost: about two q-net evaluations of one row (a few ms for 6 × 768²).
 *
 * Only ./types.ts and ./evaluate.ts may be imported here, as for ./evaluate.ts.
 */
import { residualApplies } from "./evaluate.ts";
import { LEAKY_RELU_SLOPE, QNET_LAYER_NORM_EPS, hiddenLayerCount, type Activation, type QNet } from "./types.ts";

const INV_SQRT_2PI = 0.3989422804014327; // 1/√(2π)

/** d act(a) / da. GELU is the exact form: Φ(a) + a·φ(a). */
function activationSlope(a: number, activation: Activation): number {
  switch (activation) {
    case "relu":
      return a > 0 ? 1 : 0;
    case "leaky_relu":
      return a > 0 ? 1 : LEAKY_RELU_SLOPE;
    case "gelu": {
      const pdf = INV_SQRT_2PI * Math.exp(-0.5 * a * a);
      return 0.5 * (1 + erfApprox(a * Math.SQRT1_2)) + a * pdf;
    }
    case "tanh": {
      const t = Math.tanh(a);
      return 1 - t * t;
    }
    case "sigmoid": {
      const s = 1 / (1 + Math.exp(-a));
      return s * (1 - s);
    }
    default: {
      const never: never = activation;
      throw new Error(`unknown activation ${String(never)}`);
    }
  }
}

function activate(a: number, activation: Activation): number {
  switch (activation) {
    case "relu":
      return a > 0 ? a : 0;
    case "leaky_relu":
      return a > 0 ? a : a * LEAKY_RELU_SLOPE;
    case "gelu":
      return 0.5 * a * (1 + erfApprox(a * Math.SQRT1_2));
    case "tanh":
      return Math.tanh(a);
    case "sigmoid":
      return 1 / (1 + Math.exp(-a));
    default: {
      const never: never = activation;
      throw new Error(`unknown activation ${String(never)}`);
    }
  }
}

/** erf to ~1e-7 (Abramowitz–Stegun 7.1.26): a direction for search needs no more than that. */
function erfApprox(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

/** LayerNorm without scale/bias; returns 1/σ, normalising v into out. */
function layerNorm(v: Float64Array, out: Float64Array): number {
  const n = v.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += v[i]!;
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (v[i]! - mean) ** 2;
  const inv = 1 / Math.sqrt(sq / n + QNET_LAYER_NORM_EPS);
  for (let i = 0; i < n; i++) out[i] = (v[i]! - mean) * inv;
  return inv;
}

/** Back through y = LN(v): dv = inv · (g − mean(g) − y · mean(g·y)), in place on g. */
function layerNormBackward(g: Float64Array, y: Float64Array, inv: number): void {
  const n = g.length;
  let gMean = 0;
  let gyMean = 0;
  for (let i = 0; i < n; i++) {
    gMean += g[i]!;
    gyMean += g[i]! * y[i]!;
  }
  gMean /= n;
  gyMean /= n;
  for (let i = 0; i < n; i++) g[i] = inv * (g[i]! - gMean - y[i]! * gyMean);
}

/** LN of each of `rows` rows of width n (rows × n row-major), into out; the rows' 1/σ. */
function layerNormRows(v: Float64Array, out: Float64Array, rows: number, n: number): Float64Array {
  const inv = new Float64Array(rows);
  for (let b = 0; b < rows; b++) inv[b] = layerNorm(v.subarray(b * n, (b + 1) * n), out.subarray(b * n, (b + 1) * n));
  return inv;
}

function layerNormBackwardRows(g: Float64Array, y: Float64Array, inv: Float64Array, n: number): void {
  for (let b = 0; b < inv.length; b++) layerNormBackward(g.subarray(b * n, (b + 1) * n), y.subarray(b * n, (b + 1) * n), inv[b]!);
}

interface LayerTape {
  /** x·W + b, rows × dout. */
  pre: Float64Array;
  /** LN output before the residual (when layerNormBeforeResidual), and each row's 1/σ. */
  normBefore?: { y: Float64Array; inv: Float64Array };
  /** LN output after the residual (when !layerNormBeforeResidual), and each row's 1/σ. */
  normAfter?: { y: Float64Array; inv: Float64Array };
}

/**
 * ∇ score(x) for one embedding x (length dims[0]). Returns a fresh Float32Array of dims[0].
 * Throws a RangeError for a wrong-sized input; the q-net is assumed valid (assertValidQNet).
 */
export function qnetGradient(qnet: QNet, x: ArrayLike<number>): Float32Array {
  if (x.length !== qnet.dims[0]) throw new RangeError(`qnetGradient: the q-net expects ${qnet.dims[0]}-d inputs, got ${x.length}`);
  return qnetGradients(qnet, x);
}

/**
 * ∇ score at each of several embeddings at once: `points` holds them row-major (a whole number of
 * dims[0]-wide rows); the gradients come back the same way. One pass over each weight matrix serves
 * every point (a 768 × 768 matrix does not stay in cache between points), so 4 points cost about
 * twice one, not four times.
 */
export function qnetGradients(qnet: QNet, points: ArrayLike<number>): Float32Array {
  const { dims } = qnet;
  const d0 = dims[0]!;
  if (points.length === 0 || points.length % d0 !== 0) {
    throw new RangeError(`qnetGradients: expected a whole, non-zero number of ${d0}-d points, got ${points.length} values`);
  }
  const rows = points.length / d0;
  const layers = hiddenLayerCount(qnet);
  const tapes: LayerTape[] = [];
  let current = Float64Array.from(points);
  for (let j = 0; j < layers; j++) {
    const din = dims[j]!;
    const dout = dims[j + 1]!;
    const w = qnet.weights[j]!;
    const bias = qnet.biases[j]!;
    const pre = new Float64Array(rows * dout);
    for (let b = 0; b < rows; b++) for (let o = 0; o < dout; o++) pre[b * dout + o] = bias[o]!;
    for (let k = 0; k < din; k++) {
      const row = k * dout;
      for (let b = 0; b < rows; b++) {
        const xk = current[b * din + k]!;
        if (xk === 0) continue;
        const base = b * dout;
        for (let o = 0; o < dout; o++) pre[base + o] += xk * w[row + o]!;
      }
    }
    let h = new Float64Array(rows * dout);
    for (let i = 0; i < h.length; i++) h[i] = activate(pre[i]!, qnet.activation);
    const tape: LayerTape = { pre };
    if (qnet.doLayerNorm && qnet.layerNormBeforeResidual) {
      const y = new Float64Array(rows * dout);
      tape.normBefore = { y, inv: layerNormRows(h, y, rows, dout) };
      h = Float64Array.from(y);
    }
    if (residualApplies(qnet, j)) for (let i = 0; i < h.length; i++) h[i] += current[i]!;
    if (qnet.doLayerNorm && !qnet.layerNormBeforeResidual) {
      const y = new Float64Array(rows * dout);
      tape.normAfter = { y, inv: layerNormRows(h, y, rows, dout) };
      h = Float64Array.from(y);
    }
    tapes.push(tape);
    current = h;
  }

  // score = current · W_L, so d score / d current = W_L (a [dims[L], 1] matrix) for every point.
  const last = qnet.weights[layers]!;
  let g = new Float64Array(rows * dims[layers]!);
  for (let b = 0; b < rows; b++) for (let i = 0; i < last.length; i++) g[b * last.length + i] = last[i]!;
  for (let j = layers - 1; j >= 0; j--) {
    const tape = tapes[j]!;
    const din = dims[j]!;
    const dout = dims[j + 1]!;
    if (tape.normAfter) layerNormBackwardRows(g, tape.normAfter.y, tape.normAfter.inv, dout);
    const gInput = new Float64Array(rows * din);
    if (residualApplies(qnet, j)) gInput.set(g);
    const gh = Float64Array.from(g);
    if (tape.normBefore) layerNormBackwardRows(gh, tape.normBefore.y, tape.normBefore.inv, dout);
    for (let i = 0; i < gh.length; i++) gh[i] = gh[i]! * activationSlope(tape.pre[i]!, qnet.activation);
    const w = qnet.weights[j]!;
    for (let k = 0; k < din; k++) {
      const row = k * dout;
      for (let b = 0; b < rows; b++) {
        const base = b * dout;
        let s = 0;
        for (let o = 0; o < dout; o++) s += w[row + o]! * gh[base + o]!;
        gInput[b * din + k] = gInput[b * din + k]! + s;
      }
    }
    g = gInput;
  }
  return Float32Array.from(g);
}
