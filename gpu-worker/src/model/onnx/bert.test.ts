import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type * as ort from "onnxruntime-node";
import { referenceBertForward } from "../../../../test/reference/bert.ts";
import { int64Tensor, type LoadedGraph, loadGraph, padBatch, worstRelativeError } from "../../../../test/support/onnx-run.ts";
import { randomBertWeights, SMALL_BERT } from "../../../../test/support/random-bert.ts";
import { GRAPH_IO, type BertDims, type TensorMap } from "../types.ts";
import { addBertEncoder } from "./bert.ts";
import { ElemType, GraphBuilder } from "./graph-builder.ts";

const dims = SMALL_BERT;
const weights = randomBertWeights(dims, 1234);

/** A graph whose output is the encoder's last hidden state. */
function buildHiddenStateGraph(d: BertDims, w: TensorMap): GraphBuilder {
  const g = new GraphBuilder("bert_hidden");
  const ids = g.input(GRAPH_IO.inputIds, ElemType.int64, ["batch", "seq"]);
  const mask = g.input(GRAPH_IO.attentionMask, ElemType.int64, ["batch", "seq"]);
  g.output(addBertEncoder(g, ids, mask, d, w), "hidden", ElemType.float, ["batch", "seq", d.hiddenSize]);
  return g;
}

describe("addBertEncoder", () => {
  let loaded: LoadedGraph;
  beforeAll(async () => {
    loaded = await loadGraph(buildHiddenStateGraph(dims, weights));
  });
  afterAll(async () => {
    await loaded?.dispose();
  });

  async function hiddenStates(docs: number[][]): Promise<{ out: ort.Tensor; mask: number[][]; ids: number[][] }> {
    const { ids, mask } = padBatch(docs);
    const result = await loaded.session.run({
      [GRAPH_IO.inputIds]: int64Tensor(ids),
      [GRAPH_IO.attentionMask]: int64Tensor(mask),
    });
    return { out: result.hidden!, ids, mask };
  }

  it("matches the reference at every position, padding included, for a padded batch", async () => {
    const docs = [
      [1, 7, 12, 3, 44, 2],
      [1, 9, 2],
      [1, 5, 6, 8, 10, 11, 13, 49, 20, 2],
    ];
    const { out, ids, mask } = await hiddenStates(docs);
    const [B, S, H] = out.dims as [number, number, number];
    expect([B, S, H]).toEqual([3, 10, dims.hiddenSize]);
    const data = out.data as Float32Array;
    for (let b = 0; b < B; b++) {
      // Padded positions too: their hidden states are defined (HF computes them) and must agree.
      const expected = referenceBertForward(ids[b]!, mask[b]!, dims, weights);
      for (let s = 0; s < S; s++) {
        const actual = data.subarray((b * S + s) * H, (b * S + s + 1) * H);
        expect(worstRelativeError(actual, expected[s]!), `doc ${b} position ${s}`).toBeLessThanOrEqual(1);
      }
    }
  });

  it("handles a single sequence of the maximum position count", async () => {
    const doc = Array.from({ length: dims.maxPositions }, (_, i) => (i * 7) % dims.vocabSize);
    const { out, mask } = await hiddenStates([doc]);
    const expected = referenceBertForward(doc, mask[0]!, dims, weights);
    const H = dims.hiddenSize;
    const data = out.data as Float32Array;
    expected.forEach((row, s) => {
      expect(worstRelativeError(data.subarray(s * H, (s + 1) * H), row), `position ${s}`).toBeLessThanOrEqual(1);
    });
  });

  it("rejects a sequence longer than the position table", async () => {
    const doc = Array.from({ length: dims.maxPositions + 1 }, () => 5);
    await expect(hiddenStates([doc])).rejects.toThrow(/out of data bounds|indices/i);
  });
});

describe("addBertEncoder validation", () => {
  const build = (d: BertDims, w: TensorMap) => () => buildHiddenStateGraph(d, w);

  it("names a missing weight", () => {
    const w = new Map(weights);
    w.delete("encoder.layer.1.intermediate.dense.bias");
    expect(build(dims, w)).toThrow(/encoder\.layer\.1\.intermediate\.dense\.bias is missing/);
  });

  it("names a weight with the wrong shape", () => {
    const w = new Map(weights);
    w.set("encoder.layer.0.attention.self.key.weight", { shape: [dims.hiddenSize, 3], data: new Float32Array(dims.hiddenSize * 3) });
    expect(build(dims, w)).toThrow(/key\.weight has shape \[32,3\], expected \[32,32\]/);
  });

  it("rejects a head count that does not divide the hidden size", () => {
    expect(build({ ...dims, numHeads: 5 }, weights)).toThrow(/not divisible by 5 heads/);
  });
});
