import { describe, expect, it } from "vitest";
import { randomQNet } from "../../test/support/random-qnet.ts";
import { seededRandom } from "../../gpu-worker/src/search/random.ts";
import { scoreQNet } from "./evaluate.ts";
import { qnetGradient, qnetGradients } from "./gradient.ts";
import { ACTIVATIONS, type QNetArchitecture } from "./types.ts";

/** Central differences of the float64-accurate evaluator, one coordinate at a time. */
function numericGradient(qnet: ReturnType<typeof randomQNet>, x: Float32Array, h: number): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const plus = Float32Array.from(x);
    const minus = Float32Array.from(x);
    plus[i] += h;
    minus[i] -= h;
    // scoreQNet rounds to float32; 4 identical rows keep it on its batched path.
    const s = (v: Float32Array) => scoreQNet(qnet, Float32Array.from({ length: 4 * v.length }, (_, j) => v[j % v.length]!))[0]!;
    g[i] = (s(plus) - s(minus)) / (2 * h);
  }
  return g;
}

describe("qnetGradient", () => {
  const flags = [
    { doLayerNorm: true, doResidual: true, doResidualOnLast: false, layerNormBeforeResidual: true },
    { doLayerNorm: true, doResidual: true, doResidualOnLast: true, layerNormBeforeResidual: false },
    { doLayerNorm: false, doResidual: false, doResidualOnLast: false, layerNormBeforeResidual: false },
  ];
  for (const activation of ACTIVATIONS) {
    for (const [f, flag] of flags.entries()) {
      it(`matches finite differences (${activation}, flags ${f})`, () => {
        const rand = seededRandom(11 + f);
        const arch: QNetArchitecture = { dims: [12, 12, 12, 1], activation, ...flag };
        const qnet = randomQNet(rand, arch);
        const x = Float32Array.from({ length: 12 }, () => rand() * 2 - 1);
        const analytic = qnetGradient(qnet, x);
        const numeric = numericGradient(qnet, x, 1e-3);
        const scale = Math.max(...numeric.map(Math.abs));
        for (let i = 0; i < x.length; i++) expect(Math.abs(analytic[i]! - numeric[i]!)).toBeLessThan(2e-2 * scale + 1e-4);
      });
    }
  }

  it("is exact for a linear q-net: the gradient is the product of the weights", () => {
    const arch: QNetArchitecture = { dims: [3, 2, 1], activation: "relu", doLayerNorm: false, doResidual: false, doResidualOnLast: false, layerNormBeforeResidual: false };
    // x·W0 + b0 with positive pre-activations everywhere near x, then ·W1.
    const qnet = { ...arch, weights: [Float32Array.of(1, 2, 3, 4, 5, 6), Float32Array.of(0.5, -1)], biases: [Float32Array.of(10, 10)] };
    expect([...qnetGradient(qnet, [0.1, 0.2, 0.3])]).toEqual([1 * 0.5 - 2, 3 * 0.5 - 4, 5 * 0.5 - 6]);
  });

  it("refuses an input of the wrong size", () => {
    const qnet = randomQNet(seededRandom(1), { dims: [4, 4, 1], activation: "relu", ...flags[0]! });
    expect(() => qnetGradient(qnet, [1, 2, 3])).toThrow(RangeError);
  });
});

describe("qnetGradients", () => {
  it("equals one gradient per point, for several points at once", () => {
    const rand = seededRandom(3);
    const qnet = randomQNet(rand, { dims: [16, 16, 16, 16, 1], activation: "gelu", doLayerNorm: true, doResidual: true, doResidualOnLast: false, layerNormBeforeResidual: true });
    const points = Float32Array.from({ length: 3 * 16 }, () => rand() * 2 - 1);
    const together = qnetGradients(qnet, points);
    for (let b = 0; b < 3; b++) {
      const alone = qnetGradient(qnet, points.subarray(b * 16, (b + 1) * 16));
      for (let i = 0; i < 16; i++) expect(together[b * 16 + i]).toBeCloseTo(alone[i]!, 6);
    }
    expect(() => qnetGradients(qnet, new Float32Array(20))).toThrow(RangeError);
    expect(() => qnetGradients(qnet, new Float32Array(0))).toThrow(RangeError);
  });
});
