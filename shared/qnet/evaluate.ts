/**
 * Dependency-free CPU evaluator for q-nets, so clients (browsers, workerd, Node) can rerank
 * locally with exactly the semantics of the official Hypencoder q-net.
 *
 * Only ./types.ts may be imported here: this file is bundled into browser clients and the
 * edge, and must stay free of eval / new Function (workerd bans both).
 *
 * Semantics, for hidden layers j = 0..L-1 (L = dims.length - 2):
 *   y = act(x·W_j + b_j)
 *   if doLayerNorm && layerNormBeforeResidual:  y = LN(y)
 *   if residualApplies(j):                      y = y + x
 *   if doLayerNorm && !layerNormBeforeResidual: y = LN(y)
 *   x = y
 * score = x·W_L (no bias). LN has no scale/bias, biased variance, eps = 1e-5.
 *
 * Intermediate values are kept in float64 (more accurate than the float32 reference; the
 * difference is far below float32 noise) and scores are rounded to float32 on output.
 */
import {
  ACTIVATIONS,
  LEAKY_RELU_SLOPE,
  QNET_LAYER_NORM_EPS,
  hiddenLayerCount,
  type Activation,
  type QNet,
  type QNetArchitecture,
} from "./types.ts";

/** Largest allowed entry of dims (also enforced by the wire format). */
export const QNET_MAX_DIM = 65536;

// ---------------------------------------------------------------------------------------
// Shape validation, shared with the wire decoder so both report problems identically.
// ---------------------------------------------------------------------------------------

/** One structural problem with a q-net, located by a path such as ["weights", 2]. */
export interface QNetShapeProblem {
  path: (string | number)[];
  message: string;
}

/** Whether hidden layer j adds its input back (the last hidden layer only with doResidualOnLast). */
export function residualApplies(arch: QNetArchitecture, j: number): boolean {
  const last = hiddenLayerCount(arch) - 1;
  return arch.doResidual && !(j === last && !arch.doResidualOnLast);
}

/**
 * Structural problems of an architecture plus the lengths of its weight and bias arrays
 * (empty when fine). `unit` names the element type in messages ("float32", "float16").
 * Typed-array kinds are the caller's business: the wire decoder sees raw bit arrays.
 */
export function qnetShapeProblems(
  arch: QNetArchitecture,
  weightLengths: readonly number[],
  biasLengths: readonly number[],
  unit = "float32",
): QNetShapeProblem[] {
  const problems: QNetShapeProblem[] = [];
  const { dims } = arch;
  if (!(ACTIVATIONS as readonly string[]).includes(arch.activation)) {
    problems.push({
      path: ["activation"],
      message: `unknown activation ${JSON.stringify(arch.activation)} (expected one of ${ACTIVATIONS.join(", ")})`,
    });
  }
  if (!Array.isArray(dims) || dims.length < 3) {
    const got = Array.isArray(dims) ? `[${dims.join(", ")}]` : String(dims);
    problems.push({
      path: ["dims"],
      message: `need at least one hidden layer, i.e. at least 3 dims, got ${got}`,
    });
    return problems; // nothing below is meaningful without dims
  }
  let dimsOk = true;
  dims.forEach((d, i) => {
    if (!Number.isInteger(d) || d < 1 || d > QNET_MAX_DIM) {
      problems.push({ path: ["dims", i], message: `expected an integer in 1..${QNET_MAX_DIM}, got ${d}` });
      dimsOk = false;
    }
  });
  if (dims[dims.length - 1] !== 1) {
    problems.push({
      path: ["dims", dims.length - 1],
      message: `the last dim is the score and must be 1, got ${dims[dims.length - 1]}`,
    });
    dimsOk = false;
  }
  if (!dimsOk) return problems;

  const layers = hiddenLayerCount(arch);
  for (let j = 0; j < layers; j++) {
    if (residualApplies(arch, j) && dims[j] !== dims[j + 1]) {
      problems.push({
        path: ["dims"],
        message: `hidden layer ${j} has a residual connection, so dims[${j}] and dims[${j + 1}] must be equal, got ${dims[j]} and ${dims[j + 1]}`,
      });
    }
  }

  const checkCount = (field: string, got: number, want: number) => {
    if (got !== want) {
      problems.push({
        path: [field],
        message: `expected ${want} arrays for dims [${dims.join(", ")}], got ${got}`,
      });
    }
    return got === want;
  };
  if (checkCount("weights", weightLengths.length, layers + 1)) {
    weightLengths.forEach((got, i) => {
      const want = dims[i] * dims[i + 1];
      if (got !== want) {
        problems.push({ path: ["weights", i], message: `expected ${want} ${unit} values, got ${got}` });
      }
    });
  }
  if (checkCount("biases", biasLengths.length, layers)) {
    biasLengths.forEach((got, j) => {
      const want = dims[j + 1];
      if (got !== want) {
        problems.push({ path: ["biases", j], message: `expected ${want} ${unit} values, got ${got}` });
      }
    });
  }
  return problems;
}

/** "weights[2]" style rendering of a problem path. */
export function formatQNetPath(path: readonly PropertyKey[]): string {
  let s = "";
  for (const key of path) {
    if (typeof key === "number") s += `[${key}]`;
    else s += s === "" ? String(key) : `.${String(key)}`;
  }
  return s;
}

/** "q-net weights[2]: expected 589824 float32 values, got 12" */
export function formatQNetProblem(problem: { path: readonly PropertyKey[]; message: string }): string {
  const where = formatQNetPath(problem.path);
  return where === "" ? `q-net: ${problem.message}` : `q-net ${where}: ${problem.message}`;
}

/** Joins problems into one error message; lists at most `max` of them. */
export function describeQNetProblems(
  problems: readonly { path: readonly PropertyKey[]; message: string }[],
  max = 5,
): string {
  const shown = problems.slice(0, max).map(formatQNetProblem);
  if (problems.length > max) shown.push(`(and ${problems.length - max} more problems)`);
  return shown.join("; ");
}

/** Throws a descriptive Error unless the q-net's shapes and array kinds are consistent. */
export function assertValidQNet(qnet: QNet): void {
  const problems = qnetShapeProblems(
    qnet,
    (qnet.weights ?? []).map((w) => w.length),
    (qnet.biases ?? []).map((b) => b.length),
  );
  const checkKind = (field: "weights" | "biases") =>
    (qnet[field] ?? []).forEach((a: unknown, i) => {
      // Callers may be plain JS (or deserialised JSON), so don't trust the static type.
      if (!(a instanceof Float32Array)) {
        const got = Array.isArray(a) ? "a plain array" : typeof a === "object" && a !== null ? a.constructor.name : typeof a;
        problems.push({ path: [field, i], message: `expected a Float32Array, got ${got}` });
      }
    });
  checkKind("weights");
  checkKind("biases");
  if (problems.length > 0) throw new Error(`invalid q-net: ${describeQNetProblems(problems)}`);
}

// ---------------------------------------------------------------------------------------
// erf / erfc / activations
// ---------------------------------------------------------------------------------------

const TWO_OVER_SQRT_PI = 1.1283791670955126; // 2/√π
const ONE_OVER_SQRT_PI = 0.5641895835477563; // 1/√π
const SQRT1_2 = Math.SQRT1_2;
/** Below this |x| the series is used, above it the continued fraction (both ≤ ~40 steps). */
const ERF_SERIES_LIMIT = 2.5;
/** erfc(27) ≈ 5e-319: beyond this erfc underflows to 0 in float64. */
const ERFC_ZERO_BEYOND = 27;

/**
 * erf(x) for 0 ≤ x < ERF_SERIES_LIMIT via the everywhere-positive series
 *   erf(x) = 2/√π · e^{-x²} · Σ_{n≥0} 2^n x^{2n+1} / (1·3·…·(2n+1)),
 * which, unlike the Taylor series, has no cancellation (accurate to a few ulp).
 */
function erfSeries(x: number): number {
  const twoX2 = 2 * x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= twoX2 / (2 * n + 1);
    sum += term;
    if (term <= sum * 1e-17) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x * x) * sum;
}

/**
 * erfc(x) for ERF_SERIES_LIMIT ≤ x ≤ ERFC_ZERO_BEYOND via Laplace's continued fraction
 *   erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + (2/2)/(x + (3/2)/(x + …)))),
 * evaluated with the modified Lentz algorithm (converges in < 40 steps for x ≥ 2.5).
 */
function erfcContinuedFraction(x: number): number {
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 200; n++) {
    const a = n / 2;
    d = 1 / (x + a * d);
    c = x + a / c;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return (Math.exp(-x * x) * ONE_OVER_SQRT_PI) / f;
}

/** The error function, accurate to a few ulp in float64. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  let r: number;
  if (a < ERF_SERIES_LIMIT) r = erfSeries(a);
  else if (a > ERFC_ZERO_BEYOND) r = 1;
  else r = 1 - erfcContinuedFraction(a);
  return x < 0 ? -r : r;
}

/** The complementary error function 1 - erf(x), without cancellation for large x. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < ERF_SERIES_LIMIT) return 1 - erfSeries(x);
  if (x > ERFC_ZERO_BEYOND) return 0;
  return erfcContinuedFraction(x);
}

/** Exact GELU, 0.5·x·(1 + erf(x/√2)), written with erfc so large negative x keeps precision. */
export function gelu(x: number): number {
  return 0.5 * x * erfc(-x * SQRT1_2);
}

/**
 * Applies the activation in place to v[start, end). Comparisons are written so NaN
 * propagates like torch (relu(NaN) = NaN).
 */
function activateInPlace(v: Float64Array, start: number, end: number, activation: Activation): void {
  switch (activation) {
    case "relu":
      for (let i = start; i < end; i++) if (v[i] < 0) v[i] = 0;
      return;
    case "leaky_relu":
      for (let i = start; i < end; i++) if (v[i] < 0) v[i] *= LEAKY_RELU_SLOPE;
      return;
    case "gelu":
      for (let i = start; i < end; i++) v[i] = gelu(v[i]);
      return;
    case "tanh":
      for (let i = start; i < end; i++) v[i] = Math.tanh(v[i]);
      return;
    case "sigmoid":
      for (let i = start; i < end; i++) v[i] = 1 / (1 + Math.exp(-v[i]));
      return;
    default: {
      const never: never = activation;
      throw new Error(`unknown activation ${String(never)}`);
    }
  }
}

/** LayerNorm without scale/bias over v[start, start+n): biased variance, eps 1e-5. */
function layerNormInPlace(v: Float64Array, start: number, n: number): void {
  const end = start + n;
  let sum = 0;
  for (let i = start; i < end; i++) sum += v[i];
  const mean = sum / n;
  let sq = 0;
  for (let i = start; i < end; i++) {
    const d = v[i] - mean;
    sq += d * d;
  }
  const inv = 1 / Math.sqrt(sq / n + QNET_LAYER_NORM_EPS);
  for (let i = start; i < end; i++) v[i] = (v[i] - mean) * inv;
}

// ---------------------------------------------------------------------------------------
// Scoring
// ---------------------------------------------------------------------------------------

/**
 * Rows per block: each weight is loaded once per block of rows, which matters because a
 * 768×768 float32 matrix (2.3 MB) does not stay in L1/L2 between rows.
 */
const ROW_BLOCK = 4;

/** Tiled transpose of a row-major [din, dout] matrix into [dout, din] (tiles keep both sides in cache). */
function transpose(w: Float32Array, din: number, dout: number): Float32Array {
  const t = new Float32Array(din * dout);
  const TILE = 32;
  for (let k0 = 0; k0 < din; k0 += TILE) {
    const k1 = Math.min(din, k0 + TILE);
    for (let o0 = 0; o0 < dout; o0 += TILE) {
      const o1 = Math.min(dout, o0 + TILE);
      for (let k = k0; k < k1; k++) {
        for (let o = o0; o < o1; o++) t[o * din + k] = w[k * dout + o];
      }
    }
  }
  return t;
}

/**
 * y[r] = x[r]·W + b for `rows` rows (1..ROW_BLOCK), rows stored contiguously with strides
 * din (x) and dout (y), given W transposed to [dout, din]. Output-major dot products keep
 * the accumulators in registers: a full block computes 4 rows × 2 outputs per pass over k
 * (6 loads per 8 multiply-adds), about twice as fast in V8 as the axpy form.
 */
function affineTransposed(
  x: Float64Array,
  y: Float64Array,
  rows: number,
  wt: Float32Array,
  b: Float32Array,
  din: number,
  dout: number,
): void {
  if (rows === ROW_BLOCK) {
    const x1 = din;
    const x2 = 2 * din;
    const x3 = 3 * din;
    let o = 0;
    for (; o + 1 < dout; o += 2) {
      const wa = o * din;
      const wb = wa + din;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
      for (let k = 0; k < din; k++) {
        const va = wt[wa + k];
        const vb = wt[wb + k];
        const v0 = x[k];
        const v1 = x[x1 + k];
        const v2 = x[x2 + k];
        const v3 = x[x3 + k];
        a0 += v0 * va;
        a1 += v1 * va;
        a2 += v2 * va;
        a3 += v3 * va;
        b0 += v0 * vb;
        b1 += v1 * vb;
        b2 += v2 * vb;
        b3 += v3 * vb;
      }
      const ba = b[o];
      const bb = b[o + 1];
      y[o] = a0 + ba;
      y[dout + o] = a1 + ba;
      y[2 * dout + o] = a2 + ba;
      y[3 * dout + o] = a3 + ba;
      y[o + 1] = b0 + bb;
      y[dout + o + 1] = b1 + bb;
      y[2 * dout + o + 1] = b2 + bb;
      y[3 * dout + o + 1] = b3 + bb;
    }
    if (o < dout) affineTransposedColumn(x, y, rows, wt, b, din, dout, o);
    return;
  }
  for (let o = 0; o < dout; o++) affineTransposedColumn(x, y, rows, wt, b, din, dout, o);
}

/** Output column o of affineTransposed, one row at a time (block tails and odd dout). */
function affineTransposedColumn(
  x: Float64Array,
  y: Float64Array,
  rows: number,
  wt: Float32Array,
  b: Float32Array,
  din: number,
  dout: number,
  o: number,
): void {
  const wo = o * din;
  for (let r = 0; r < rows; r++) {
    const xb = r * din;
    let s = 0;
    for (let k = 0; k < din; k++) s += x[xb + k] * wt[wo + k];
    y[r * dout + o] = s + b[o];
  }
}

/**
 * y = x·W + b for a single row with W in its wire layout [din, dout]. Used when there are
 * too few rows for the transpose in scoreQNet to pay off. The k-outer loop streams W with
 * unit stride and skips zero inputs (common after relu).
 */
function affineRow(x: Float64Array, y: Float64Array, w: Float32Array, b: Float32Array, din: number, dout: number): void {
  for (let o = 0; o < dout; o++) y[o] = b[o];
  for (let k = 0; k < din; k++) {
    const xk = x[k];
    if (xk === 0) continue;
    const wk = k * dout;
    for (let o = 0; o < dout; o++) y[o] += xk * w[wk + o];
  }
}

/**
 * Scores each row of `embeddings` (n rows of dims[0] floats, row-major) with the q-net.
 * Returns `out` (which must hold exactly n values) or a new Float32Array of n scores.
 * Throws if the q-net is malformed or the embeddings length is not a multiple of dims[0].
 */
export function scoreQNet(qnet: QNet, embeddings: Float32Array, out?: Float32Array): Float32Array {
  assertValidQNet(qnet);
  const { dims } = qnet;
  const din0 = dims[0];
  if (embeddings.length % din0 !== 0) {
    throw new Error(`embeddings length ${embeddings.length} is not a multiple of the q-net input dim ${din0}`);
  }
  const n = embeddings.length / din0;
  const scores = out ?? new Float32Array(n);
  if (scores.length !== n) throw new Error(`out has ${scores.length} elements, expected ${n} (one per embedding)`);

  const layers = hiddenLayerCount(qnet);
  const ln = qnet.doLayerNorm;
  const lnFirst = qnet.layerNormBeforeResidual;
  // Transposing costs about one pass over the weights; it pays off from one full block on.
  const blocked = n >= ROW_BLOCK;
  const block = blocked ? ROW_BLOCK : 1;
  const hiddenWeights = qnet.weights.slice(0, layers);
  const wts = blocked ? hiddenWeights.map((w, j) => transpose(w, dims[j], dims[j + 1])) : hiddenWeights;
  const maxDim = Math.max(...dims);
  let cur = new Float64Array(ROW_BLOCK * maxDim);
  let next = new Float64Array(ROW_BLOCK * maxDim);
  const wLast = qnet.weights[layers];
  const dLast = dims[layers];

  for (let r0 = 0; r0 < n; r0 += block) {
    const rows = Math.min(block, n - r0);
    // Rows of the block sit contiguously in `cur` with the current layer's width as stride.
    for (let i = 0, src = r0 * din0; i < rows * din0; i++) cur[i] = embeddings[src + i];

    for (let j = 0; j < layers; j++) {
      const din = dims[j];
      const dout = dims[j + 1];
      if (blocked) affineTransposed(cur, next, rows, wts[j], qnet.biases[j], din, dout);
      else affineRow(cur, next, wts[j], qnet.biases[j], din, dout); // rows === 1
      activateInPlace(next, 0, rows * dout, qnet.activation);
      const residual = residualApplies(qnet, j); // validated: din === dout when true
      for (let r = 0; r < rows; r++) {
        const yb = r * dout;
        if (ln && lnFirst) layerNormInPlace(next, yb, dout);
        if (residual) for (let o = 0; o < dout; o++) next[yb + o] += cur[yb + o];
        if (ln && !lnFirst) layerNormInPlace(next, yb, dout);
      }
      const t = cur;
      cur = next;
      next = t;
    }

    for (let r = 0; r < rows; r++) {
      let s = 0;
      const xb = r * dLast;
      for (let k = 0; k < dLast; k++) s += cur[xb + k] * wLast[k];
      scores[r0 + r] = s;
    }
  }
  return scores;
}

/** Scores one embedding of dims[0] floats. */
export function scoreOne(qnet: QNet, x: Float32Array): number {
  if (x.length !== qnet.dims[0]) {
    throw new Error(`embedding has ${x.length} values, the q-net expects ${qnet.dims[0]}`);
  }
  return scoreQNet(qnet, x)[0];
}
