import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { referenceBertForward, referencePool } from "../../../../test/reference/bert.ts";
import { int64Tensor, type LoadedGraph, loadGraph, padBatch, worstRelativeError } from "../../../../test/support/onnx-run.ts";
import { randomBertWeights, SMALL_BERT } from "../../../../test/support/random-bert.ts";
import { GRAPH_IO, type Pooling } from "../types.ts";
import { buildDocEncoderGraph } from "./doc-encoder.ts";

const dims = SMALL_BERT;
const weights = randomBertWeights(dims, 99);

const DOCS = [
  [1, 7, 12, 3, 44, 2],
  [1, 9, 2],
  [1, 5, 6, 8, 10, 11, 13, 49, 20, 31, 2],
];

describe.each<Pooling>(["cls", "mean"])("buildDocEncoderGraph (%s pooling)", (pooling) => {
  let loaded: LoadedGraph;
  beforeAll(async () => {
    loaded = await loadGraph(buildDocEncoderGraph(dims, weights, pooling));
  });
  afterAll(async () => {
    await loaded?.dispose();
  });

  async function encode(docs: number[][]): Promise<Float32Array[]> {
    const { ids, mask } = padBatch(docs);
    const out = (await loaded.session.run({
      [GRAPH_IO.inputIds]: int64Tensor(ids),
      [GRAPH_IO.attentionMask]: int64Tensor(mask),
    }))[GRAPH_IO.embeddings]!;
    const H = dims.hiddenSize;
    expect(out.dims).toEqual([docs.length, H]);
    const data = out.data as Float32Array;
    return docs.map((_, b) => data.slice(b * H, (b + 1) * H));
  }

  /** The reference embedding of a document encoded alone (no padding). */
  const expected = (doc: number[]) =>
    referencePool(referenceBertForward(doc, doc.map(() => 1), dims, weights), doc.map(() => 1), pooling);

  it("declares the agreed inputs and output", () => {
    expect(loaded.session.inputNames).toEqual([GRAPH_IO.inputIds, GRAPH_IO.attentionMask]);
    expect(loaded.session.outputNames).toEqual([GRAPH_IO.embeddings]);
  });

  it("matches the reference for a batch of 1", async () => {
    const [actual] = await encode([DOCS[0]!]);
    expect(worstRelativeError(actual!, expected(DOCS[0]!))).toBeLessThanOrEqual(1);
  });

  it("matches the reference, unaffected by padding, for a batch of 3 of different lengths", async () => {
    const actual = await encode(DOCS);
    DOCS.forEach((doc, b) => {
      expect(worstRelativeError(actual[b]!, expected(doc)), `doc ${b}`).toBeLessThanOrEqual(1);
    });
  });

  it("gives a document the same embedding alone and in a padded batch", async () => {
    const [alone] = await encode([DOCS[1]!]);
    const batched = await encode(DOCS);
    // Same graph, same tokens: only the padding differs, so float32 noise is all that may differ.
    expect(worstRelativeError(batched[1]!, alone!, 1e-5)).toBeLessThanOrEqual(1);
  });
});

describe("referencePool mean", () => {
  it("ignores padded positions", () => {
    const hidden = [Float32Array.of(1, 2), Float32Array.of(3, 4), Float32Array.of(100, 100)];
    expect(Array.from(referencePool(hidden, [1, 1, 0], "mean"))).toEqual([2, 3]);
  });
});
