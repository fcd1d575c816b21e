import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { QNetArchitecture } from "../../../../shared/qnet/types.ts";
import { referenceBertForward } from "../../../../test/reference/bert.ts";
import { referenceHyperhead } from "../../../../test/reference/hypernetwork.ts";
import { int64Tensor, type LoadedGraph, loadGraph, padBatch, worstRelativeError } from "../../../../test/support/onnx-run.ts";
import { randomBertWeights, SMALL_BERT, seededRandom } from "../../../../test/support/random-bert.ts";
import { randomHyperheadWeights } from "../../../../test/support/random-qnet.ts";
import { GRAPH_IO, type HypencoderSpec, type HypencoderWeights } from "../types.ts";
import { buildQueryEncoderGraph } from "./query-encoder.ts";

const qnet: QNetArchitecture = {
  dims: [SMALL_BERT.hiddenSize, 32, 32, 1],
  activation: "gelu",
  doLayerNorm: true,
  doResidual: true,
  doResidualOnLast: false,
  layerNormBeforeResidual: true,
};
const spec: HypencoderSpec = { qnet, pooling: "cls", sharedEncoder: false, baseModelName: "test/small-bert", bert: SMALL_BERT };
const queryBert = randomBertWeights(SMALL_BERT, 7);
const weights: HypencoderWeights = {
  queryBert,
  passageBert: queryBert,
  hyperhead: randomHyperheadWeights(seededRandom(8), qnet, SMALL_BERT.hiddenSize),
};
const QUERIES = [
  [1, 7, 12, 3, 44, 2],
  [1, 9, 2],
  [1, 5, 6, 8, 10, 11, 2],
];

describe("buildQueryEncoderGraph", () => {
  let loaded: LoadedGraph;
  beforeAll(async () => {
    loaded = await loadGraph(buildQueryEncoderGraph(spec, weights));
  });
  afterAll(async () => {
    await loaded?.dispose();
  });

  it("declares the agreed inputs and outputs", () => {
    expect(loaded.session.inputNames).toEqual([GRAPH_IO.inputIds, GRAPH_IO.attentionMask]);
    expect(loaded.session.outputNames).toEqual([GRAPH_IO.weight(0), GRAPH_IO.weight(1), GRAPH_IO.weight(2), GRAPH_IO.bias(0), GRAPH_IO.bias(1)]);
  });

  it("gives each query of a padded batch its reference q-net", async () => {
    const { ids, mask } = padBatch(QUERIES);
    const out = await loaded.session.run({ [GRAPH_IO.inputIds]: int64Tensor(ids), [GRAPH_IO.attentionMask]: int64Tensor(mask) });
    QUERIES.forEach((query, b) => {
      const ones = query.map(() => 1);
      const ref = referenceHyperhead(referenceBertForward(query, ones, SMALL_BERT, queryBert), ones, qnet, weights.hyperhead);
      const check = (name: string, expected: Float32Array) => {
        const data = (out[name]!.data as Float32Array).subarray(b * expected.length, (b + 1) * expected.length);
        expect(worstRelativeError(data, expected), `query ${b} ${name}`).toBeLessThanOrEqual(1);
      };
      ref.weights.forEach((w, i) => check(GRAPH_IO.weight(i), w));
      ref.biases.forEach((v, j) => check(GRAPH_IO.bias(j), v));
    });
    expect(out[GRAPH_IO.weight(0)]!.dims).toEqual([QUERIES.length, 32, 32]);
    expect(out[GRAPH_IO.bias(1)]!.dims).toEqual([QUERIES.length, 32]);
  });

  it("rejects a hyperhead built for another hidden size", () => {
    const other = { ...weights, hyperhead: randomHyperheadWeights(seededRandom(1), { dims: [16, 16, 1] }, 16) };
    expect(() => buildQueryEncoderGraph(spec, other)).toThrow(/BERT hidden size is 32 but the hyperhead's key projections take 16/);
  });
});
