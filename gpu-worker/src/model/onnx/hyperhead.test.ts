import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import type { QNetArchitecture } from "../../../../shared/qnet/types.ts";
import { int64Tensor, loadGraph, worstRelativeError } from "../../../../test/support/onnx-run.ts";
import { seededRandom } from "../../../../test/support/random-bert.ts";
import { randomFloats, randomHyperheadWeights } from "../../../../test/support/random-qnet.ts";
import { referenceHyperhead } from "../../../../test/reference/hypernetwork.ts";
import { GRAPH_IO, type TensorMap } from "../types.ts";
import { ElemType, GraphBuilder } from "./graph-builder.ts";
import { addHyperhead, addHyperheadOutputs, hyperSlots } from "./hyperhead.ts";

const H = 16;

const arch = (dims: number[]): QNetArchitecture => ({
  dims,
  activation: "relu",
  doLayerNorm: true,
  doResidual: true,
  doResidualOnLast: false,
  layerNormBeforeResidual: true,
});

/** A graph around just the hyperhead: hidden_states [B,S,h] + attention_mask → weight_i, bias_j. */
function hyperheadGraph(qnet: QNetArchitecture, weights: TensorMap): GraphBuilder {
  const g = new GraphBuilder("hyperhead_test");
  const hidden = g.input("hidden_states", ElemType.float, ["batch", "seq", H]);
  const mask = g.input(GRAPH_IO.attentionMask, ElemType.int64, ["batch", "seq"]);
  addHyperheadOutputs(g, addHyperhead(g, hidden, mask, qnet, weights), qnet);
  return g;
}

/** Runs the graph on queries of different lengths, padded to the longest (padding states are noise). */
async function runPadded(g: GraphBuilder, queries: Float32Array[][]): Promise<ort.InferenceSession.OnnxValueMapType> {
  const seq = Math.max(...queries.map((q) => q.length));
  const hidden = randomFloats(seededRandom(99), queries.length * seq * H, 3);
  queries.forEach((q, b) => q.forEach((row, t) => hidden.set(row, (b * seq + t) * H)));
  const mask = queries.map((q) => Array.from({ length: seq }, (_, t) => (t < q.length ? 1 : 0)));
  return run(g, new ort.Tensor("float32", hidden, [queries.length, seq, H]), int64Tensor(mask));
}

async function run(g: GraphBuilder, hidden: ort.Tensor, mask: ort.Tensor): Promise<ort.InferenceSession.OnnxValueMapType> {
  const loaded = await loadGraph(g);
  try {
    return await loaded.session.run({ hidden_states: hidden, attention_mask: mask });
  } finally {
    await loaded.dispose();
  }
}

/** Fails with the output's name when it is not within 1e-4 relative of the reference. */
function expectClose(actual: ort.Tensor, b: number, expected: Float32Array, label: string, tol = 1e-4): void {
  const data = (actual.data as Float32Array).subarray(b * expected.length, (b + 1) * expected.length);
  expect(worstRelativeError(data, expected, tol), `${label}: worst error / tolerance`).toBeLessThanOrEqual(1);
}

describe("addHyperhead", () => {
  for (const dims of [[16, 16, 16, 1], [16, 16, 1], [16, 8, 12, 1]]) {
    it(`matches the reference for dims [${dims}] on a padded batch`, async () => {
      const rand = seededRandom(dims.length * 7 + dims[1]!);
      const qnet = arch(dims);
      const weights = randomHyperheadWeights(rand, qnet, H);
      const queries = [7, 3, 5].map((len) => Array.from({ length: len }, () => randomFloats(rand, H, 1.5)));
      const outputs = await runPadded(hyperheadGraph(qnet, weights), queries);

      queries.forEach((rows, b) => {
        const ref = referenceHyperhead(rows, rows.map(() => 1), qnet, weights);
        ref.weights.forEach((w, i) => {
          expect(outputs[`weight_${i}`]!.dims).toEqual([queries.length, dims[i], dims[i + 1]]);
          expectClose(outputs[`weight_${i}`]!, b, w, `query ${b} weight_${i}`);
        });
        ref.biases.forEach((bias, j) => {
          expect(outputs[`bias_${j}`]!.dims).toEqual([queries.length, dims[j + 1]]);
          expectClose(outputs[`bias_${j}`]!, b, bias, `query ${b} bias_${j}`);
        });
      });
    });
  }

  it("gives a padded query the same q-net as the query alone", async () => {
    const rand = seededRandom(5);
    const qnet = arch([16, 16, 16, 1]);
    const g = hyperheadGraph(qnet, randomHyperheadWeights(rand, qnet, H));
    const queries = [6, 2].map((len) => Array.from({ length: len }, () => randomFloats(rand, H, 1.5)));
    const batched = await runPadded(g, queries);
    const alone = await runPadded(g, [queries[1]!]);
    for (const name of Object.keys(alone)) {
      expectClose(batched[name]!, 1, alone[name]!.data as Float32Array, `${name} padded vs alone`, 1e-5);
    }
  });

  it("also agrees with the reference when some in-query tokens are masked", async () => {
    const rand = seededRandom(11);
    const qnet = arch([16, 16, 1]);
    const weights = randomHyperheadWeights(rand, qnet, H);
    const rows = Array.from({ length: 5 }, () => randomFloats(rand, H, 1.5));
    const mask = [1, 0, 1, 1, 0];
    const hidden = new ort.Tensor("float32", Float32Array.from(rows.flatMap((r) => [...r])), [1, 5, H]);
    const out = await run(hyperheadGraph(qnet, weights), hidden, int64Tensor([mask]));
    const ref = referenceHyperhead(rows, mask, qnet, weights);
    expectClose(out.weight_0!, 0, ref.weights[0]!, "weight_0");
    expectClose(out.bias_0!, 0, ref.biases[0]!, "bias_0");
  });

  it("orders slots weights first, then biases", () => {
    const slots = hyperSlots({ dims: [16, 8, 12, 1] });
    expect(slots.map((s) => [s.kind, s.layer, s.projectionIndex, s.inSize, s.outSize])).toEqual([
      ["weight", 0, 0, 16, 8],
      ["weight", 1, 1, 8, 12],
      ["weight", 2, 2, 12, 1],
      ["bias", 0, 3, 8, 1],
      ["bias", 1, 4, 12, 1],
    ]);
  });

  it("names a missing or misshapen tensor", () => {
    const qnet = arch([16, 16, 1]);
    const weights = randomHyperheadWeights(seededRandom(1), qnet, H);
    const g = () => new GraphBuilder("t");
    const build = (w: TensorMap) => addHyperhead(g(), "h", "m", qnet, w);
    const missing = new Map(weights);
    missing.delete("bias_hyper_projection.0.weight");
    expect(() => build(missing)).toThrow(/missing tensor bias_hyper_projection\.0\.weight/);
    const wrong = new Map(weights);
    wrong.set("hyper_base_matrices.0", { shape: [16, 16], data: new Float32Array(256) });
    expect(() => build(wrong)).toThrow(/hyper_base_matrices\.0 has shape \[16,16\], expected \[1,16,16\]/);
  });
});
