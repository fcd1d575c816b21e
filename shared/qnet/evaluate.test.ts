import { describe, expect, it } from "vitest";
import {
  assertValidQNet,
  erf,
  erfc,
  gelu,
  qnetShapeProblems,
  residualApplies,
  scoreOne,
  scoreQNet,
} from "./evaluate.ts";
import { ACTIVATIONS, type Activation, type QNet } from "./types.ts";

const f32 = (...v: number[]) => new Float32Array(v);

/**
 * The hand-checked 2→2→1 net (one hidden layer, which is therefore also the last one):
 *   x  = [1, 2]
 *   W0 = [[1, -1],        x·W0 = [1·1 + 2·0.5, 1·(-1) + 2·1] = [2, 1]
 *         [0.5, 1]]
 *   b0 = [0.5, -2]        z = x·W0 + b0 = [2.5, -1]
 *   W1 = [[2], [3]]       score = 2·y0 + 3·y1
 */
function tinyNet(flags: Partial<QNet> = {}): QNet {
  return {
    dims: [2, 2, 1],
    activation: "relu",
    doLayerNorm: false,
    doResidual: false,
    doResidualOnLast: false,
    layerNormBeforeResidual: false,
    weights: [f32(1, -1, 0.5, 1), f32(2, 3)],
    biases: [f32(0.5, -2)],
    ...flags,
  };
}
const X = f32(1, 2);

/** float32 output: compare to ~7 significant digits. */
function expectScore(got: number, want: number): void {
  expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want)));
}

describe("scoreQNet on the hand-checked 2→2→1 net", () => {
  it("applies each activation to z = [2.5, -1]", () => {
    const want: Record<Activation, number> = {
      relu: 5, // y = [2.5, 0];          2·2.5 + 3·0 = 5
      leaky_relu: 4.97, // y = [2.5, -0.01];  5 - 0.03 = 4.97
      // y = [tanh 2.5, tanh -1] = [0.98661429815143, -0.76159415595576]
      // 1.97322859630286 - 2.28478246786729 = -0.31155387156443
      tanh: -0.3115538715644339,
      // y = [σ(2.5), σ(-1)] = [0.92414181997876, 0.26894142137000]
      // 1.84828363995751 + 0.80682426410999 = 2.65510790406750
      sigmoid: 2.6551079040674983,
      // y = [2.5·Φ(2.5), -1·Φ(-1)] = [2.48447583668556, -0.15865525393146]
      // (Φ(2.5) = 0.99379033467422, Φ(-1) = 0.15865525393146; Φ(t) = (1 + erf(t/√2))/2)
      // 4.96895167337112 - 0.47596576179437 = 4.49298591157675
      gelu: 4.492985911576748,
    };
    for (const activation of ACTIVATIONS) {
      expectScore(scoreOne(tinyNet({ activation }), X), want[activation]);
    }
  });

  // relu gives a = act(z) = [2.5, 0]. With one hidden layer, the residual applies only when
  // doResidual && doResidualOnLast. LN(v) = (v - mean)/sqrt(var + 1e-5), biased variance.
  //   plain:                 y = [2.5, 0]                                  → 5
  //   residual only:         y = a + x = [3.5, 2]                          → 7 + 6 = 13
  //   LN only:               mean 1.25, var 1.5625, s = sqrt(1.56251)
  //                          y = [1.25, -1.25]/s                           → -1.25/s = -0.99999680001536
  //   LN, then residual:     y = [1.25, -1.25]/s + [1, 2]                  → 8 - 1.25/s = 7.00000319998464
  //   residual, then LN:     v = [3.5, 2], mean 2.75, var 0.5625, s' = sqrt(0.56251)
  //                          y = [0.75, -0.75]/s'                          → -0.75/s' = -0.99999111122963
  const PLAIN = 5;
  const RESIDUAL = 13;
  const LN_ONLY = -1.25 / Math.sqrt(1.56251); // -0.9999968000153598
  const LN_THEN_RESIDUAL = 8 - 1.25 / Math.sqrt(1.56251); // 7.00000319998464
  const RESIDUAL_THEN_LN = -0.75 / Math.sqrt(0.56251); // -0.9999911112296279

  it("matches the written-down value for all 16 flag combinations", () => {
    expect(LN_ONLY).toBeCloseTo(-0.9999968000153598, 14);
    expect(LN_THEN_RESIDUAL).toBeCloseTo(7.00000319998464, 13);
    expect(RESIDUAL_THEN_LN).toBeCloseTo(-0.9999911112296279, 14);
    for (let bits = 0; bits < 16; bits++) {
      const doLayerNorm = (bits & 1) !== 0;
      const doResidual = (bits & 2) !== 0;
      const doResidualOnLast = (bits & 4) !== 0;
      const layerNormBeforeResidual = (bits & 8) !== 0;
      const residual = doResidual && doResidualOnLast;
      let want: number;
      if (!doLayerNorm) want = residual ? RESIDUAL : PLAIN;
      else if (!residual) want = LN_ONLY; // where LN sits doesn't matter without a residual
      else want = layerNormBeforeResidual ? LN_THEN_RESIDUAL : RESIDUAL_THEN_LN;
      const net = tinyNet({ doLayerNorm, doResidual, doResidualOnLast, layerNormBeforeResidual });
      expectScore(scoreOne(net, X), want);
    }
  });
});

describe("scoreQNet residual placement with two hidden layers (2→2→2→1)", () => {
  // Layer 0 as in the tiny net: relu([2.5, -1]) = [2.5, 0].
  // Layer 1: W1 = [[1, 0], [0, -1]], b1 = [0, 1]: v·W1 + b1 = [v0, 1 - v1]; relu.
  // Scoring: W2 = [[2], [3]].
  const net = (doResidual: boolean, doResidualOnLast: boolean): QNet => ({
    dims: [2, 2, 2, 1],
    activation: "relu",
    doLayerNorm: false,
    doResidual,
    doResidualOnLast,
    layerNormBeforeResidual: false,
    weights: [f32(1, -1, 0.5, 1), f32(1, 0, 0, -1), f32(2, 3)],
    biases: [f32(0.5, -2), f32(0, 1)],
  });

  it("no residual: [2.5, 0] → [2.5, 1] → 5 + 3 = 8", () => {
    expectScore(scoreOne(net(false, false), X), 8);
    expectScore(scoreOne(net(false, true), X), 8);
  });
  it("residual on the first layer only: [3.5, 2] → relu([3.5, -1]) = [3.5, 0] → 7", () => {
    expectScore(scoreOne(net(true, false), X), 7);
  });
  it("residual on both: [3.5, 2] → [3.5, 0] + [3.5, 2] = [7, 2] → 14 + 6 = 20", () => {
    expectScore(scoreOne(net(true, true), X), 20);
  });
  it("residualApplies says which layers add their input", () => {
    expect([0, 1].map((j) => residualApplies(net(true, false), j))).toEqual([true, false]);
    expect([0, 1].map((j) => residualApplies(net(true, true), j))).toEqual([true, true]);
    expect([0, 1].map((j) => residualApplies(net(false, true), j))).toEqual([false, false]);
  });
});

/** Straightforward per-row reference, written independently of the blocked kernel. */
function referenceScore(q: QNet, x: Float32Array): number {
  const act = (v: number): number => {
    switch (q.activation) {
      case "relu":
        return Math.max(0, v);
      case "leaky_relu":
        return v > 0 ? v : 0.01 * v;
      case "tanh":
        return Math.tanh(v);
      case "sigmoid":
        return 1 / (1 + Math.exp(-v));
      case "gelu":
        return 0.5 * v * (1 + erf(v / Math.SQRT2));
    }
  };
  const ln = (v: number[]) => {
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
    return v.map((t) => (t - mean) / Math.sqrt(variance + 1e-5));
  };
  let cur = Array.from(x);
  const L = q.dims.length - 2;
  for (let j = 0; j < L; j++) {
    const [din, dout] = [q.dims[j], q.dims[j + 1]];
    let y = Array.from({ length: dout }, (_, o) => {
      let s = q.biases[j][o];
      for (let k = 0; k < din; k++) s += cur[k] * q.weights[j][k * dout + o];
      return act(s);
    });
    if (q.doLayerNorm && q.layerNormBeforeResidual) y = ln(y);
    if (q.doResidual && !(j === L - 1 && !q.doResidualOnLast)) y = y.map((t, o) => t + cur[o]);
    if (q.doLayerNorm && !q.layerNormBeforeResidual) y = ln(y);
    cur = y;
  }
  return cur.reduce((s, t, k) => s + t * q.weights[L][k], 0);
}

function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function randomNet(dims: number[], flags: Partial<QNet>, seed: number): QNet {
  const rand = seededRandom(seed);
  const fill = (n: number, scale: number) => Float32Array.from({ length: n }, () => rand() * scale);
  const L = dims.length - 2;
  return {
    dims,
    activation: "gelu",
    doLayerNorm: true,
    doResidual: true,
    doResidualOnLast: false,
    layerNormBeforeResidual: false,
    weights: dims.slice(0, -1).map((d, i) => fill(d * dims[i + 1], 2 / Math.sqrt(d))),
    biases: Array.from({ length: L }, (_, j) => fill(dims[j + 1], 0.2)),
    ...flags,
  };
}

describe("scoreQNet on random nets", () => {
  it("agrees with a naive reference for every activation, flag set and row count (block remainders)", () => {
    let seed = 1;
    for (const activation of ACTIVATIONS) {
      for (const doLayerNorm of [false, true]) {
        for (const layerNormBeforeResidual of [false, true]) {
          const q = randomNet([16, 16, 16, 16, 1], { activation, doLayerNorm, layerNormBeforeResidual }, seed++);
          for (const n of [0, 1, 3, 4, 5, 9]) {
            const rand = seededRandom(seed++);
            const emb = Float32Array.from({ length: n * 16 }, () => rand() * 2);
            const got = scoreQNet(q, emb);
            expect(got.length).toBe(n);
            for (let r = 0; r < n; r++) {
              const want = referenceScore(q, emb.subarray(r * 16, (r + 1) * 16));
              expect(Math.abs(got[r] - want)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want)));
            }
          }
        }
      }
    }
  });

  it("handles non-square hidden layers with odd widths, one row and blocked rows alike", () => {
    const q = randomNet([5, 7, 3, 1], { doResidual: false, activation: "tanh" }, 99);
    const x = f32(0.1, -0.2, 0.3, 0.4, -0.5);
    expect(scoreOne(q, x)).toBeCloseTo(referenceScore(q, x), 5);
    const rand = seededRandom(5);
    const emb = Float32Array.from({ length: 6 * 5 }, rand);
    const got = scoreQNet(q, emb);
    for (let r = 0; r < 6; r++) expect(got[r]).toBeCloseTo(referenceScore(q, emb.subarray(r * 5, r * 5 + 5)), 5);
  });

  it("fills a caller-provided out array", () => {
    const q = tinyNet();
    const out = new Float32Array(2);
    expect(scoreQNet(q, f32(1, 2, 1, 2), out)).toBe(out);
    expect(Array.from(out)).toEqual([5, 5]);
  });
});

describe("scoreQNet input checks", () => {
  it("rejects embeddings whose length is not a multiple of dims[0]", () => {
    expect(() => scoreQNet(tinyNet(), f32(1, 2, 3))).toThrow(/embeddings length 3 is not a multiple of the q-net input dim 2/);
  });
  it("rejects an out array of the wrong size", () => {
    expect(() => scoreQNet(tinyNet(), X, new Float32Array(2))).toThrow(/out has 2 elements, expected 1/);
  });
  it("rejects a single embedding of the wrong size", () => {
    expect(() => scoreOne(tinyNet(), f32(1, 2, 3))).toThrow(/embedding has 3 values, the q-net expects 2/);
  });
  it("rejects malformed q-nets with clear messages", () => {
    expect(() => scoreOne(tinyNet({ weights: [f32(1, 2, 3), f32(2, 3)] }), X)).toThrow(
      "invalid q-net: q-net weights[0]: expected 4 float32 values, got 3",
    );
    expect(() => scoreOne(tinyNet({ biases: [] }), X)).toThrow(/q-net biases: expected 1 arrays for dims \[2, 2, 1\], got 0/);
    expect(() => scoreOne(tinyNet({ dims: [2, 2, 2] }), X)).toThrow(/q-net dims\[2\]: the last dim is the score and must be 1, got 2/);
    expect(() => scoreOne(tinyNet({ activation: "swish" as Activation }), X)).toThrow(/unknown activation "swish"/);
    expect(() =>
      assertValidQNet(tinyNet({ weights: [[1, -1, 0.5, 1] as unknown as Float32Array, f32(2, 3)] })),
    ).toThrow(/q-net weights\[0\]: expected a Float32Array, got a plain array/);
  });
  it("qnetShapeProblems reports residual dims mismatches and nets without a hidden layer", () => {
    const arch = { ...tinyNet(), dims: [4, 8, 8, 1], doResidual: true };
    expect(qnetShapeProblems(arch, [32, 64, 8], [8, 8])).toEqual([
      {
        path: ["dims"],
        message: "hidden layer 0 has a residual connection, so dims[0] and dims[1] must be equal, got 4 and 8",
      },
    ]);
    expect(qnetShapeProblems({ ...arch, dims: [4, 1] }, [4], [])[0].message).toMatch(/at least 3 dims, got \[4, 1\]/);
  });
});

describe("erf / erfc / gelu", () => {
  // Reference values: correctly rounded erf/erfc (CPython math.erf / math.erfc).
  const ERF: [number, number][] = [
    [0.1, 0.1124629160182849],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [1.5, 0.9661051464753108],
    [2, 0.9953222650189527],
    [2.4999, 0.9995928300996666],
    [2.5, 0.999593047982555],
    [3, 0.9999779095030014],
    [3.5, 0.9999992569016276],
    [4, 0.9999999845827421],
    [-3, -0.9999779095030014],
  ];
  it("erf matches known values to ~1e-15 (required: 1e-7)", () => {
    for (const [x, want] of ERF) expect(Math.abs(erf(x) - want)).toBeLessThan(1e-15);
    expect(erf(0)).toBe(0);
    expect(erf(1e-10)).toBeCloseTo(1.1283791670955126e-10, 24);
    expect(erf(6)).toBe(1);
    expect(erf(Infinity)).toBe(1);
    expect(erf(-Infinity)).toBe(-1);
    expect(erf(NaN)).toBeNaN();
  });
  it("erfc keeps relative accuracy in the tail", () => {
    const ERFC: [number, number][] = [
      [0.5, 0.4795001221869535],
      [2, 0.004677734981047265],
      [2.5, 0.0004069520174449589],
      [3, 2.2090496998585438e-5],
      [5, 1.5374597944280351e-12],
      [6, 2.1519736712498916e-17],
      [10, 2.088487583762545e-45],
      [26, 5.663192408856143e-296],
    ];
    for (const [x, want] of ERFC) expect(Math.abs(erfc(x) / want - 1)).toBeLessThan(1e-13);
    expect(erfc(-3)).toBeCloseTo(1.9999779095030015, 15);
    expect(erfc(30)).toBe(0);
  });
  it("gelu is exact-form GELU, including far into the negative tail", () => {
    expect(gelu(2.5)).toBeCloseTo(2.4844758366855597, 15);
    expect(gelu(-1)).toBeCloseTo(-0.15865525393145707, 15);
    expect(gelu(0)).toBe(0);
    // 0.5·x·erfc(10/√2) = -7.619853024160593e-23, where 1 + erf underflows to 0.
    expect(gelu(-10) / -7.619853024160593e-23).toBeCloseTo(1, 12);
  });
});
