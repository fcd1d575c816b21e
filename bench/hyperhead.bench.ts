/**
 * CPU latency of the hyperhead alone (BERT output → q-net weights) at the published size
 * (h = 768, q-net 6×768 → 1), random weights: graph build time, then session.run per batch.
 *
 *   GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184 \
 *     node --import tsx bench/hyperhead.bench.ts [--batches=1,8] [--seq=32] [--runs=5] [--threads=<cores>]
 */
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import type { QNetArchitecture } from "../shared/qnet/types.ts";
import { ElemType, encodeModel, GraphBuilder } from "../gpu-worker/src/model/onnx/graph-builder.ts";
import { addHyperhead, addHyperheadOutputs } from "../gpu-worker/src/model/onnx/hyperhead.ts";
import { GRAPH_IO } from "../gpu-worker/src/model/types.ts";
import { seededRandom } from "../test/support/random-bert.ts";
import { randomFloats, randomHyperheadWeights } from "../test/support/random-qnet.ts";

const { values: args } = parseArgs({
  options: {
    batches: { type: "string", default: "1,8" },
    seq: { type: "string", default: "32" },
    runs: { type: "string", default: "5" },
    threads: { type: "string", default: String(availableParallelism()) },
  },
});
const H = 768;
const qnet: QNetArchitecture = {
  dims: [...Array<number>(7).fill(H), 1],
  activation: "relu",
  doLayerNorm: true,
  doResidual: true,
  doResidualOnLast: false,
  layerNormBeforeResidual: true,
};

const rand = seededRandom(3);
const weights = randomHyperheadWeights(rand, qnet, H);
let t0 = performance.now();
const g = new GraphBuilder("hyperhead_bench");
const hidden = g.input("hidden_states", ElemType.float, ["batch", "seq", H]);
const mask = g.input(GRAPH_IO.attentionMask, ElemType.int64, ["batch", "seq"]);
addHyperheadOutputs(g, addHyperhead(g, hidden, mask, qnet, weights), qnet);
console.log(`build: ${(performance.now() - t0).toFixed(0)} ms (${g.nodes.length} nodes)`);
t0 = performance.now();
const session = await ort.InferenceSession.create(encodeModel(g), { graphOptimizationLevel: "all", intraOpNumThreads: Number(args.threads) });
console.log(`session: ${(performance.now() - t0).toFixed(0)} ms, threads=${args.threads}`);

const seq = Number(args.seq);
for (const batch of args.batches.split(",").map(Number)) {
  const feeds = {
    hidden_states: new ort.Tensor("float32", randomFloats(rand, batch * seq * H), [batch, seq, H]),
    [GRAPH_IO.attentionMask]: new ort.Tensor("int64", new BigInt64Array(batch * seq).fill(1n), [batch, seq]),
  };
  const times: number[] = [];
  for (let r = -1; r < Number(args.runs); r++) {
    const t = performance.now();
    await session.run(feeds);
    if (r >= 0) times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const ms = times[Math.floor(times.length / 2)]!;
  console.log(`batch ${batch} × ${seq} tokens: median ${ms.toFixed(1)} ms (${(ms / batch).toFixed(1)} ms/query), best ${times[0]!.toFixed(1)} ms`);
}
await session.release();
