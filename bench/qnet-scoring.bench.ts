/**
 * Throughput of the q-net scorer graph (the search hot loop) against a plain chain of MatMuls of the
 * same shapes, on onnxruntime-node CPU. Both count only the matmul FLOPs, 2·N·Σ in_i·out_i, so the
 * ratio is what the q-net's bias, activation, layer norm and residual ops cost on top of the GEMMs.
 *
 *   GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184 \
 *     node --import tsx bench/qnet-scoring.bench.ts [--batches=4096,16384,65536] [--runs=5]
 *       [--activation=relu] [--threads=<cores>] [--opt=all] [--no-spin] [--f16] [--layers=6] [--width=768]
 *
 * Without the glibc tunables, ORT's large per-run buffers go back to the OS after every run
 * (mmap/munmap + page faults), which costs more than the elementwise ops being measured.
 * Scorer and baseline runs are interleaved so load changes on a shared machine hit both alike, and
 * the ratio column is the median of the per-pair ratios (chain time / scorer time of the same round).
 * --no-spin stops ORT's intra-op threads from busy-waiting between ops (helps on oversubscribed hosts).
 */
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { float32ArrayToHalf } from "../shared/qnet/half.ts";
import { ACTIVATIONS, type Activation, type QNetArchitecture } from "../shared/qnet/types.ts";
import { ElemType, encodeModel, GraphBuilder } from "../gpu-worker/src/model/onnx/graph-builder.ts";
import { buildQNetScorerGraph } from "../gpu-worker/src/model/onnx/qnet-scorer.ts";
import { GRAPH_IO } from "../gpu-worker/src/model/types.ts";
import { seededRandom } from "../test/support/random-bert.ts";
import { randomFloats, randomQNet } from "../test/support/random-qnet.ts";

type OptLevel = NonNullable<ort.InferenceSession.SessionOptions["graphOptimizationLevel"]>;

const { values: args } = parseArgs({
  options: {
    batches: { type: "string", default: "4096,16384,65536" },
    runs: { type: "string", default: "5" },
    activation: { type: "string", default: "relu" },
    threads: { type: "string", default: String(availableParallelism()) },
    opt: { type: "string", default: "all" },
    f16: { type: "boolean", default: false },
    "no-spin": { type: "boolean", default: false },
    layers: { type: "string", default: "6" },
    width: { type: "string", default: "768" },
  },
});
if (!(ACTIVATIONS as readonly string[]).includes(args.activation)) throw new Error(`--activation must be one of ${ACTIVATIONS.join(", ")}`);

const width = Number(args.width);
const arch: QNetArchitecture = {
  dims: [...Array<number>(Number(args.layers) + 1).fill(width), 1],
  activation: args.activation as Activation,
  doLayerNorm: true,
  doResidual: true,
  doResidualOnLast: false,
  layerNormBeforeResidual: true,
};
const sessionOptions: ort.InferenceSession.SessionOptions = {
  graphOptimizationLevel: args.opt as OptLevel,
  intraOpNumThreads: Number(args.threads),
  ...(args["no-spin"] ? { extra: { session: { intra_op: { allow_spinning: "0" } } } } : {}),
};

/** The baseline: x·W0·W1·…·WL with the same inputs as the scorer and nothing else. */
function matmulChainGraph(dims: number[]): GraphBuilder {
  const g = new GraphBuilder("matmul_chain");
  let x = g.input(GRAPH_IO.embeddings, ElemType.float, ["docs", dims[0]!]);
  dims.slice(0, -1).forEach((inSize, i) => {
    x = g.matmul(x, g.input(GRAPH_IO.weight(i), ElemType.float, [inSize, dims[i + 1]!]), `layer_${i}`);
  });
  g.output(x, GRAPH_IO.scores, ElemType.float, ["docs", 1]);
  return g;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  if (!process.env.GLIBC_TUNABLES) console.warn("warning: GLIBC_TUNABLES not set; see the header of this file");
  const rand = seededRandom(1);
  const qnet = randomQNet(rand, arch);
  const d = arch.dims;
  const weightFeeds: Record<string, ort.Tensor> = {};
  qnet.weights.forEach((w, i) => (weightFeeds[GRAPH_IO.weight(i)] = new ort.Tensor("float32", w, [d[i]!, d[i + 1]!])));
  const biasFeeds: Record<string, ort.Tensor> = {};
  qnet.biases.forEach((b, j) => (biasFeeds[GRAPH_IO.bias(j)] = new ort.Tensor("float32", b, [d[j + 1]!])));

  const embeddingType = args.f16 ? "float16" : "float32";
  const scorer = await ort.InferenceSession.create(encodeModel(buildQNetScorerGraph(arch, { embeddingType })), sessionOptions);
  const chain = await ort.InferenceSession.create(encodeModel(matmulChainGraph(d)), sessionOptions);
  const flopsPerDoc = 2 * d.slice(0, -1).reduce((sum, inSize, i) => sum + inSize * d[i + 1]!, 0);

  console.log(
    `q-net ${JSON.stringify(d.length > 4 ? `${d.length - 2}×${width}→1` : d)} ${arch.activation}, ` +
      `embeddings ${embeddingType}, opt=${args.opt}, threads=${args.threads}${args["no-spin"] ? " (no spin)" : ""}, runs=${args.runs}`,
  );
  console.log("batch    | scorer ms (median) | scorer GFLOP/s | chain ms | chain GFLOP/s | ratio | ratio of bests");
  for (const batch of args.batches.split(",").map(Number)) {
    const x = randomFloats(rand, batch * d[0]!, 1);
    const embeddings = args.f16 ? new ort.Tensor("float16", float32ArrayToHalf(x), [batch, d[0]!]) : new ort.Tensor("float32", x, [batch, d[0]!]);
    const chainInput = new ort.Tensor("float32", x, [batch, d[0]!]);
    const times = { scorer: [] as number[], chain: [] as number[] };
    for (let r = -1; r < Number(args.runs); r++) {
      // r = -1 is a warm-up (allocations, packing) and is not recorded.
      let t0 = performance.now();
      await scorer.run({ ...weightFeeds, ...biasFeeds, [GRAPH_IO.embeddings]: embeddings });
      if (r >= 0) times.scorer.push(performance.now() - t0);
      t0 = performance.now();
      await chain.run({ ...weightFeeds, [GRAPH_IO.embeddings]: chainInput });
      if (r >= 0) times.chain.push(performance.now() - t0);
    }
    const [ms, chainMs] = [median(times.scorer), median(times.chain)];
    const pairedRatio = median(times.scorer.map((t, r) => times.chain[r]! / t));
    const bestRatio = Math.min(...times.chain) / Math.min(...times.scorer);
    const gflops = (t: number) => (flopsPerDoc * batch) / t / 1e6;
    console.log(
      [
        String(batch).padEnd(8),
        ms.toFixed(1).padStart(18),
        gflops(ms).toFixed(1).padStart(14),
        chainMs.toFixed(1).padStart(8),
        gflops(chainMs).toFixed(1).padStart(13),
        pairedRatio.toFixed(3).padStart(5),
        bestRatio.toFixed(3).padStart(14),
      ].join(" | "),
    );
  }
  await scorer.release();
  await chain.release();
}

await main();
