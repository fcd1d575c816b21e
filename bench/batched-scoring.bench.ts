/**
 * Batched scoring across queries (issue 14): Q concurrent searches each score one frontier, either
 * as today (one single-query scorer run per query, one after another) or through the ScoreBatcher
 * (one batched run for the Q frontiers), in the same process, rounds interleaved so load changes on
 * a shared machine hit both alike. Models: the tiny q-net ([32,32,32,1]) and the BERT-base-sized one
 * (6×768→1), published flags, random weights; onnxruntime-node CPU.
 *
 *   GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184 \
 *     node bin/run-ts.mjs bench/batched-scoring.bench.ts [--queries=1,4,8] [--rows=32,256] [--models=tiny,base]
 *       [--runs=5] [--tiny-runs=60] [--warmup=12] [--threads=<cores>] [--f32]
 *
 * Each query's frontier has between rows/2 and rows rows (seeded; one table per --rows value), so the
 * batched runs pad.
 * Columns: median ms per round (all Q frontiers scored) for
 * - sequential: today's path, one single-query run per frontier;
 * - adaptive: the ScoreBatcher as shipped (grouping "adaptive": pads only when its measured run cost
 *   says the padding costs less than the run saved), after --warmup rounds to measure; "runs/round" is
 *   how many batched runs it made per round (0: it judged every frontier better alone);
 * - fill≥0.5: the batcher with the fixed rule { minPaddedFill: 0.5 } (always batches these frontiers);
 * - restacked: the same with fresh q-net records every round, so the Q weight sets are copied again
 *   (the worst case, a new group every run); the others reuse them, as concurrent searches do while
 *   they step together.
 * Speed-ups are medians of the per-round ratios sequential / batched. Before timing, every batched
 * score is checked against the sequential one (1e-5).
 */
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { float32ArrayToHalf } from "../shared/qnet/half.ts";
import type { QNetArchitecture } from "../shared/qnet/types.ts";
import { PUBLISHED_QNET_FLAGS } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { encodeModel } from "../gpu-worker/src/model/onnx/graph-builder.ts";
import { encodeBatchedQNetScorer } from "../gpu-worker/src/model/onnx/qnet-scorer-batched.ts";
import { buildQNetScorerGraph } from "../gpu-worker/src/model/onnx/qnet-scorer.ts";
import { type ScoreJob, createScoreBatcher } from "../gpu-worker/src/model/runtime/score-batcher.ts";
import { GRAPH_IO } from "../gpu-worker/src/model/types.ts";
import { worstRelativeError } from "../test/support/onnx-run.ts";
import { seededRandom } from "../test/support/random-bert.ts";
import { randomFloats, randomQNet } from "../test/support/random-qnet.ts";

const { values: args } = parseArgs({
  options: {
    queries: { type: "string", default: "1,4,8" },
    rows: { type: "string", default: "32,256" },
    models: { type: "string", default: "tiny,base" },
    runs: { type: "string", default: "5" },
    "tiny-runs": { type: "string", default: "60" },
    warmup: { type: "string", default: "12" },
    threads: { type: "string", default: String(availableParallelism()) },
    f32: { type: "boolean", default: false },
  },
});

const MODELS: Record<string, QNetArchitecture> = {
  tiny: { dims: [32, 32, 32, 1], ...PUBLISHED_QNET_FLAGS },
  base: { dims: [...Array<number>(7).fill(768), 1], ...PUBLISHED_QNET_FLAGS },
};
const embeddingType = args.f32 ? "float32" : "float16";
const sessionOptions: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: "all", intraOpNumThreads: Number(args.threads) };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function qnetTensors(rand: () => number, arch: QNetArchitecture): Record<string, ort.Tensor> {
  const q = randomQNet(rand, arch);
  const d = arch.dims;
  const tensors: Record<string, ort.Tensor> = {};
  q.weights.forEach((w, i) => (tensors[GRAPH_IO.weight(i)] = new ort.Tensor("float32", w, [d[i]!, d[i + 1]!])));
  q.biases.forEach((b, j) => (tensors[GRAPH_IO.bias(j)] = new ort.Tensor("float32", b, [d[j + 1]!])));
  return tensors;
}

async function benchModel(name: string, arch: QNetArchitecture, maxRows: number): Promise<void> {
  const dim = arch.dims[0]!;
  const runs = name === "tiny" ? Number(args["tiny-runs"]) : Number(args.runs);
  const single = await ort.InferenceSession.create(encodeModel(buildQNetScorerGraph(arch, { embeddingType })), sessionOptions);
  const batchedSession = await ort.InferenceSession.create(encodeBatchedQNetScorer(arch, { embeddingType }), sessionOptions);
  let batchedRuns = 0;
  const counted = {
    inputMetadata: batchedSession.inputMetadata,
    run: (feeds: ort.InferenceSession.FeedsType) => (batchedRuns++, batchedSession.run(feeds)),
  } as ort.InferenceSession;
  const scoreAlone = async (job: ScoreJob) => {
    const rows = job.embeddings.length / dim;
    const out = await single.run({ ...job.qnet, [GRAPH_IO.embeddings]: new ort.Tensor(embeddingType, job.embeddings, [rows, dim]) });
    return out[GRAPH_IO.scores]!.data as Float32Array;
  };
  const adaptive = createScoreBatcher({ arch, dim, single: scoreAlone, batchedSession: async () => counted });
  const fixedFill = createScoreBatcher({ arch, dim, single: scoreAlone, batchedSession: async () => batchedSession, grouping: { minPaddedFill: 0.5 } });
  // Its own batcher, so fixedFill keeps its stacked weights between rounds.
  const restacking = createScoreBatcher({ arch, dim, single: scoreAlone, batchedSession: async () => batchedSession, grouping: { minPaddedFill: 0.5 } });

  console.log(`\n## ${name}: q-net [${arch.dims.join(",")}] ${arch.activation}, embeddings ${embeddingType}, frontier ${maxRows / 2}..${maxRows} rows per query, threads=${args.threads}, runs=${runs}`);
  console.log(
    "Q | rows/round | sequential ms | adaptive ms (runs/round) | fill≥0.5 ms | restacked ms | speed-up adaptive | fill≥0.5 | restacked | worst error/1e-5",
  );
  for (const Q of args.queries.split(",").map(Number)) {
    const rand = seededRandom(1000 + Q);
    const qnets = Array.from({ length: Q }, () => qnetTensors(rand, arch));
    const frontiers = qnets.map(() => {
      const values = randomFloats(rand, (maxRows / 2 + Math.floor(rand() * (maxRows / 2 + 1))) * dim, 1);
      return embeddingType === "float16" ? float32ArrayToHalf(values) : values;
    });
    const jobs = qnets.map((qnet, q): ScoreJob => ({ qnet, embeddings: frontiers[q]! }));
    const rowsPerRound = frontiers.reduce((n, f) => n + f.length / dim, 0);

    const sequential = async () => {
      const out: Float32Array[] = [];
      for (const job of jobs) out.push(await scoreAlone(job));
      return out;
    };
    const adaptiveRound = () => Promise.all(jobs.map((job) => adaptive.submit(job)));
    const fixedRound = () => Promise.all(jobs.map((job) => fixedFill.submit(job)));
    // Fresh records (same tensors): the batcher cannot reuse its stacked weights.
    const restackedRound = () => Promise.all(jobs.map((job) => restacking.submit({ ...job, qnet: { ...job.qnet } })));

    // The check that every path gives the sequential scores, then warm-up (the adaptive batcher measures its runs).
    const expected = await sequential();
    let worst = 0;
    for (const round of [adaptiveRound, fixedRound, restackedRound]) {
      const got = await round();
      worst = Math.max(worst, ...got.map((s, q) => worstRelativeError(s, expected[q]!, 1e-5)));
    }
    if (!(worst <= 1)) throw new Error(`batched scores differ from sequential ones: worst error ${worst} × 1e-5`);
    for (let r = 0; r < Number(args.warmup); r++) await adaptiveRound();

    const times = { sequential: [] as number[], adaptive: [] as number[], fixed: [] as number[], restacked: [] as number[] };
    const runsBefore = batchedRuns;
    for (let r = 0; r < runs; r++) {
      for (const [key, fn] of [["sequential", sequential], ["adaptive", adaptiveRound], ["fixed", fixedRound], ["restacked", restackedRound]] as const) {
        const t0 = performance.now();
        await fn();
        times[key].push(performance.now() - t0);
      }
    }
    const runsPerRound = (batchedRuns - runsBefore) / runs;
    const ratio = (key: "adaptive" | "fixed" | "restacked") => `${median(times.sequential.map((t, r) => t / times[key][r]!)).toFixed(2)}×`;
    console.log(
      [
        String(Q),
        String(rowsPerRound).padStart(10),
        median(times.sequential).toFixed(2).padStart(13),
        `${median(times.adaptive).toFixed(2)} (${runsPerRound.toFixed(1)})`.padStart(24),
        median(times.fixed).toFixed(2).padStart(11),
        median(times.restacked).toFixed(2).padStart(12),
        ratio("adaptive").padStart(17),
        ratio("fixed").padStart(8),
        ratio("restacked").padStart(9),
        worst.toFixed(3).padStart(16),
      ].join(" | "),
    );
  }
  await single.release();
  await batchedSession.release();
}

if (!process.env.GLIBC_TUNABLES) console.warn("warning: GLIBC_TUNABLES not set; see bench/qnet-scoring.bench.ts");
for (const name of args.models.split(",")) {
  const arch = MODELS[name];
  if (!arch) throw new Error(`--models: unknown model "${name}"; known: ${Object.keys(MODELS).join(", ")}`);
  for (const rows of args.rows.split(",").map(Number)) await benchModel(name, arch, rows);
}
