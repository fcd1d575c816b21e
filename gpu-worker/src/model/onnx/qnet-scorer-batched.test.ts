import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { float32ArrayToHalf } from "../../../../shared/qnet/half.ts";
import { ACTIVATIONS, type QNet, type QNetArchitecture } from "../../../../shared/qnet/types.ts";
import { worstRelativeError } from "../../../../test/support/onnx-run.ts";
import { seededRandom } from "../../../../test/support/random-bert.ts";
import { randomFloats, randomQNet } from "../../../../test/support/random-qnet.ts";
import { GRAPH_IO } from "../types.ts";
import { encodeModel } from "./graph-builder.ts";
import { buildBatchedQNetScorerGraph, encodeBatchedQNetScorer } from "./qnet-scorer-batched.ts";
import { buildQNetScorerGraph } from "./qnet-scorer.ts";

/** The bound: batched scores equal one-query-at-a-time scores within 1e-5 (relative above 1, absolute below). */
const TOLERANCE = 1e-5;

const floatTensor = (data: Float32Array, dims: number[]) => new ort.Tensor("float32", data, dims);

function singleFeeds(qnet: QNet): Record<string, ort.Tensor> {
  const d = qnet.dims;
  const feeds: Record<string, ort.Tensor> = {};
  qnet.weights.forEach((w, i) => (feeds[GRAPH_IO.weight(i)] = floatTensor(w, [d[i]!, d[i + 1]!])));
  qnet.biases.forEach((b, j) => (feeds[GRAPH_IO.bias(j)] = floatTensor(b, [d[j + 1]!])));
  return feeds;
}

/** weight_i [Q, d_i, d_{i+1}], bias_j [Q, 1, d_{j+1}]: each query's tensors one after another. */
function stackedFeeds(qnets: QNet[]): Record<string, ort.Tensor> {
  const d = qnets[0]!.dims;
  const feeds: Record<string, ort.Tensor> = {};
  const stack = (parts: Float32Array[]) => {
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) (out.set(p, at), (at += p.length));
    return out;
  };
  d.slice(0, -1).forEach((inSize, i) => (feeds[GRAPH_IO.weight(i)] = floatTensor(stack(qnets.map((q) => q.weights[i]!)), [qnets.length, inSize, d[i + 1]!])));
  for (let j = 0; j < d.length - 2; j++) feeds[GRAPH_IO.bias(j)] = floatTensor(stack(qnets.map((q) => q.biases[j]!)), [qnets.length, 1, d[j + 1]!]);
  return feeds;
}

/** A random scorer-compatible architecture: 0–3 hidden layers, widths equal wherever a residual needs them. */
function randomArchitecture(rand: () => number): QNetArchitecture {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const flag = () => rand() < 0.5;
  const hidden = Math.floor(rand() * 4);
  const doResidual = flag();
  const d0 = 3 + Math.floor(rand() * 18);
  const widths = Array.from({ length: hidden }, () => (doResidual ? d0 : 2 + Math.floor(rand() * 18)));
  return {
    dims: [d0, ...widths, 1],
    activation: pick(ACTIVATIONS),
    doLayerNorm: flag(),
    layerNormBeforeResidual: flag(),
    doResidual,
    doResidualOnLast: flag(),
  };
}

interface Case {
  arch: QNetArchitecture;
  half: boolean;
  qnets: QNet[];
  /** Per query, its rows (float32 values; rounded to half first when `half`). */
  rows: Float32Array[];
}

function randomCase(seed: number): Case {
  const rand = seededRandom(seed);
  const arch = randomArchitecture(rand);
  const queries = 1 + Math.floor(rand() * 6);
  const d0 = arch.dims[0]!;
  return {
    arch,
    half: rand() < 0.5,
    qnets: Array.from({ length: queries }, () => randomQNet(rand, arch)),
    rows: Array.from({ length: queries }, () => randomFloats(rand, (1 + Math.floor(rand() * 30)) * d0, 2)),
  };
}

const embeddingTensor = (half: boolean, values: Float32Array, dims: number[]) =>
  half ? new ort.Tensor("float16", float32ArrayToHalf(values), dims) : floatTensor(values, dims);

/** Runs the batched graph on the case, rows padded to the longest with `padValue`, and returns each query's scores. */
async function batchedScores(session: ort.InferenceSession, c: Case, padValue: number): Promise<Float32Array[]> {
  const d0 = c.arch.dims[0]!;
  const longest = Math.max(...c.rows.map((r) => r.length / d0));
  const padded = new Float32Array(c.rows.length * longest * d0).fill(padValue);
  c.rows.forEach((r, q) => padded.set(r, q * longest * d0));
  const out = await session.run({ ...stackedFeeds(c.qnets), [GRAPH_IO.embeddings]: embeddingTensor(c.half, padded, [c.rows.length, longest, d0]) });
  const scores = out[GRAPH_IO.scores]!;
  expect(scores.dims).toEqual([c.rows.length, longest]);
  const data = scores.data as Float32Array;
  return c.rows.map((r, q) => data.slice(q * longest, q * longest + r.length / d0));
}

async function singleScores(session: ort.InferenceSession, c: Case): Promise<Float32Array[]> {
  const d0 = c.arch.dims[0]!;
  const scores: Float32Array[] = [];
  for (const [q, r] of c.rows.entries()) {
    const out = await session.run({ ...singleFeeds(c.qnets[q]!), [GRAPH_IO.embeddings]: embeddingTensor(c.half, r, [r.length / d0, d0]) });
    scores.push(out[GRAPH_IO.scores]!.data as Float32Array);
  }
  return scores;
}

describe("buildBatchedQNetScorerGraph", () => {
  it("gives every query the scores the single-query scorer gives it, for random shapes, Q, n, float16 and float32", async () => {
    const kinds = new Set<string>();
    for (let seed = 1; seed <= 24; seed++) {
      const c = randomCase(seed);
      const embeddingType = c.half ? "float16" : "float32";
      kinds.add(`${embeddingType}/${c.qnets.length > 1 ? "many" : "one"}`);
      const single = await ort.InferenceSession.create(encodeModel(buildQNetScorerGraph(c.arch, { embeddingType })));
      const batched = await ort.InferenceSession.create(encodeBatchedQNetScorer(c.arch, { embeddingType }));
      try {
        const expected = await singleScores(single, c);
        // Zero padding, and large padding values: a padded row must never change a real row's score.
        for (const padValue of [0, 1000]) {
          const actual = await batchedScores(batched, c, padValue);
          actual.forEach((scores, q) => {
            const label = `seed ${seed} ${JSON.stringify(c.arch)} ${embeddingType} query ${q}/${c.qnets.length} pad ${padValue}`;
            expect(scores.length, label).toBe(expected[q]!.length);
            expect(worstRelativeError(scores, expected[q]!, TOLERANCE), label).toBeLessThanOrEqual(1);
          });
        }
      } finally {
        await single.release();
        await batched.release();
      }
    }
    // The seeds cover both embedding types, with one query and with several.
    expect([...kinds].sort()).toEqual(["float16/many", "float16/one", "float32/many", "float32/one"]);
  });

  it("declares [queries, docs, d0] embeddings of the requested type and [queries, docs] scores", async () => {
    const arch: QNetArchitecture = { dims: [8, 8, 1], activation: "relu", doLayerNorm: true, layerNormBeforeResidual: true, doResidual: true, doResidualOnLast: false };
    const session = await ort.InferenceSession.create(encodeBatchedQNetScorer(arch, { embeddingType: "float16" }));
    try {
      expect(session.inputMetadata.find((m) => m.name === GRAPH_IO.embeddings)).toMatchObject({ type: "float16", shape: ["queries", "docs", 8] });
      expect(session.inputMetadata.find((m) => m.name === GRAPH_IO.weight(0))).toMatchObject({ type: "float32", shape: ["queries", 8, 8] });
      expect(session.inputMetadata.find((m) => m.name === GRAPH_IO.bias(0))).toMatchObject({ type: "float32", shape: ["queries", 1, 8] });
      expect(session.outputMetadata.find((m) => m.name === GRAPH_IO.scores)).toMatchObject({ type: "float32", shape: ["queries", "docs"] });
    } finally {
      await session.release();
    }
  });

  it("rejects the shapes the single scorer rejects", () => {
    const base = { activation: "relu", doLayerNorm: true, layerNormBeforeResidual: true, doResidual: true, doResidualOnLast: true } as const;
    expect(() => buildBatchedQNetScorerGraph({ ...base, dims: [16, 8, 1] })).toThrow(/residual on hidden layer 0 needs equal sizes/);
    expect(() => buildBatchedQNetScorerGraph({ ...base, dims: [16, 16, 2] })).toThrow(/last dim must be 1/);
    expect(() => buildBatchedQNetScorerGraph({ ...base, dims: [16] })).toThrow(/at least two positive integers/);
  });
});
