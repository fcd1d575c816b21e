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

interface LayerTape {
  /** The layer's input. */
  input: Float64Array;
  /** x·W + b. */
  pre: Float64Array;
  /** LN output before the residual (when layerNormBeforeResidual), and its 1/σ. */
  normBefore?: { y: Float64Array; inv: number };
  /** LN output after the residual (when !layerNormBeforeResidual), and its 1/σ. */
  normAfter?: { y: Float64Array; inv: number };
}

/**
 * ∇ score(x) for one embedding x (length dims[0]). Returns a fresh Float32Array of dims[0].
 * Throws a RangeError for a wrong-sized input; the q-net is assumed valid (assertValidQNet).
 */
export function qnetGradient(qnet: QNet, x: ArrayLike<number>): Float32Array {
  const { dims } = qnet;
  if (x.length !== dims[0]) throw new RangeError(`qnetGradient: the q-net expects ${dims[0]}-d inputs, got ${x.length}`);
  const layers = hiddenLayerCount(qnet);
  const tapes: LayerTape[] = [];
  let current = Float64Array.from(x);
  for (let j = 0; j < layers; j++) {
    const din = dims[j]!;
    const dout = dims[j + 1]!;
    const w = qnet.weights[j]!;
    const b = qnet.biases[j]!;
    const pre = new Float64Array(dout);
    for (let o = 0; o < dout; o++) pre[o] = b[o]!;
    for (let k = 0; k < din; k++) {
      const xk = current[k]!;
      if (xk === 0) continue;
      const row = k * dout;
      for (let o = 0; o < dout; o++) pre[o] += xk * w[row + o]!;
    }
    let h = new Float64Array(dout);
    for (let o = 0; o < dout; o++) h[o] = activate(pre[o]!, qnet.activation);
    const tape: LayerTape = { input: current, pre };
    if (qnet.doLayerNorm && qnet.layerNormBeforeResidual) {
      const y = new Float64Array(dout);
      tape.normBefore = { y, inv: layerNorm(h, y) };
      h = Float64Array.from(y);
    }
    if (residualApplies(qnet, j)) for (let o = 0; o < dout; o++) h[o] += current[o]!;
    if (qnet.doLayerNorm && !qnet.layerNormBeforeResidual) {
      const y = new Float64Array(dout);
      tape.normAfter = { y, inv: layerNorm(h, y) };
      h = Float64Array.from(y);
    }
    tapes.push(tape);
    current = h;
  }

  // score = current · W_L, so d score / d current = W_L (a [dims[L], 1] matrix).
  let g = Float64Array.from(qnet.weights[layers]!);
  for (let j = layers - 1; j >= 0; j--) {
    const tape = tapes[j]!;
    const din = dims[j]!;
    const dout = dims[j + 1]!;
    if (tape.normAfter) layerNormBackward(g, tape.normAfter.y, tape.normAfter.inv);
    const gInput = new Float64Array(din);
    if (residualApplies(qnet, j)) gInput.set(g);
    const gh = Float64Array.from(g);
    if (tape.normBefore) layerNormBackward(gh, tape.normBefore.y, tape.normBefore.inv);
    for (let o = 0; o < dout; o++) gh[o] = gh[o]! * activationSlope(tape.pre[o]!, qnet.activation);
    const w = qnet.weights[j]!;
    for (let k = 0; k < din; k++) {
      const row = k * dout;
      let s = 0;
      for (let o = 0; o < dout; o++) s += w[row + o]! * gh[o]!;
      gInput[k] = gInput[k]! + s;
    }
    g = gInput;
  }
  return Float32Array.from(g);
}
