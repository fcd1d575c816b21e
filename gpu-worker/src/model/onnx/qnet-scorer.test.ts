import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACTIVATIONS, type QNet, type QNetArchitecture } from "../../../../shared/qnet/types.ts";
import { float32ArrayToHalf, halfToFloat32Array } from "../../../../shared/qnet/half.ts";
import { type LoadedGraph, loadGraph, worstRelativeError } from "../../../../test/support/onnx-run.ts";
import { seededRandom } from "../../../../test/support/random-bert.ts";
import { randomFloats, randomQNet } from "../../../../test/support/random-qnet.ts";
import { referenceQNetScore } from "../../../../test/reference/hypernetwork.ts";
import { GRAPH_IO } from "../types.ts";
import { buildQNetScorerGraph } from "./qnet-scorer.ts";

const DOCS = 37;

const floatTensor = (data: Float32Array, dims: number[]) => new ort.Tensor("float32", data, dims);

function expectClose(actual: ort.Tensor, expected: Float32Array, label: string): void {
  expect(worstRelativeError(actual.data as Float32Array, expected), `${label}: worst error / tolerance`).toBeLessThanOrEqual(1);
}

/** Feeds for one q-net: its weights and biases under the GRAPH_IO names. */
function qnetFeeds(qnet: QNet): Record<string, ort.Tensor> {
  const d = qnet.dims;
  const feeds: Record<string, ort.Tensor> = {};
  qnet.weights.forEach((w, i) => (feeds[GRAPH_IO.weight(i)] = floatTensor(w, [d[i]!, d[i + 1]!])));
  qnet.biases.forEach((b, j) => (feeds[GRAPH_IO.bias(j)] = floatTensor(b, [d[j + 1]!])));
  return feeds;
}

function referenceScores(qnet: QNet, embeddings: Float32Array): Float32Array {
  const d0 = qnet.dims[0]!;
  return Float32Array.from({ length: embeddings.length / d0 }, (_, n) =>
    referenceQNetScore(qnet, embeddings.subarray(n * d0, (n + 1) * d0)),
  );
}

async function checkScorer(arch: QNetArchitecture, seed: number): Promise<void> {
  const rand = seededRandom(seed);
  const qnet = randomQNet(rand, arch);
  const embeddings = randomFloats(rand, DOCS * arch.dims[0]!, 1);
  const loaded = await loadGraph(buildQNetScorerGraph(arch));
  try {
    const out = await loaded.session.run({ ...qnetFeeds(qnet), [GRAPH_IO.embeddings]: floatTensor(embeddings, [DOCS, arch.dims[0]!]) });
    expect(out[GRAPH_IO.scores]!.dims).toEqual([DOCS]);
    expectClose(out[GRAPH_IO.scores]!, referenceScores(qnet, embeddings), `scores of ${JSON.stringify(arch)}`);
  } finally {
    await loaded.dispose();
  }
}

const bools = [true, false];
/** Every combination of the four flags. */
const flagSets = bools.flatMap((doLayerNorm) =>
  bools.flatMap((layerNormBeforeResidual) =>
    bools.flatMap((doResidual) => bools.map((doResidualOnLast) => ({ doLayerNorm, layerNormBeforeResidual, doResidual, doResidualOnLast }))),
  ),
);

describe("buildQNetScorerGraph", () => {
  for (const dims of [[16, 16, 16, 1], [16, 16, 1]]) {
    describe(`dims [${dims}]`, () => {
      for (const activation of ACTIVATIONS) {
        it(`matches the reference for ${activation} under all ${flagSets.length} flag combinations`, async () => {
          for (const [k, flags] of flagSets.entries()) await checkScorer({ dims, activation, ...flags }, k + 100 * dims.length);
        });
      }
    });
  }

  it("handles layers of different sizes without residuals", async () => {
    const base = { activation: "gelu", doLayerNorm: true, layerNormBeforeResidual: true, doResidual: false, doResidualOnLast: false } as const;
    await checkScorer({ ...base, dims: [16, 8, 12, 1] }, 3);
  });

  it("rejects a residual between layers of different sizes, and a last dim other than 1", () => {
    const base = { activation: "relu", doLayerNorm: true, layerNormBeforeResidual: true, doResidual: true, doResidualOnLast: true } as const;
    expect(() => buildQNetScorerGraph({ ...base, dims: [16, 8, 1] })).toThrow(/residual on hidden layer 0 needs equal sizes/);
    expect(() => buildQNetScorerGraph({ ...base, dims: [16, 16, 2] })).toThrow(/last dim must be 1/);
  });

  describe("float16 embeddings", () => {
    const arch: QNetArchitecture = {
      dims: [16, 16, 16, 1],
      activation: "gelu",
      doLayerNorm: true,
      layerNormBeforeResidual: true,
      doResidual: true,
      doResidualOnLast: false,
    };
    let loaded: LoadedGraph;
    beforeAll(async () => {
      loaded = await loadGraph(buildQNetScorerGraph(arch, { embeddingType: "float16" }));
    });
    afterAll(() => loaded.dispose());

    it("declares a float16 input and scores the half-precision values exactly as float32", async () => {
      const { session } = loaded;
      expect(session.inputMetadata.find((m) => m.name === GRAPH_IO.embeddings)).toMatchObject({ type: "float16" });
      const rand = seededRandom(8);
      const qnet = randomQNet(rand, arch);
      const half = float32ArrayToHalf(randomFloats(rand, DOCS * 16, 2));
      const out = await session.run({ ...qnetFeeds(qnet), [GRAPH_IO.embeddings]: new ort.Tensor("float16", half, [DOCS, 16]) });
      expectClose(out[GRAPH_IO.scores]!, referenceScores(qnet, halfToFloat32Array(half)), "float16 scores");
    });
  });
});
