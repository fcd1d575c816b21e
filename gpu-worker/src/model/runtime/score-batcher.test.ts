import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { float32ArrayToHalf } from "../../../../shared/qnet/half.ts";
import type { QNetArchitecture } from "../../../../shared/qnet/types.ts";
import { worstRelativeError } from "../../../../test/support/onnx-run.ts";
import { seededRandom } from "../../../../test/support/random-bert.ts";
import { randomFloats, randomQNet } from "../../../../test/support/random-qnet.ts";
import { encodeModel } from "../onnx/graph-builder.ts";
import { encodeBatchedQNetScorer } from "../onnx/qnet-scorer-batched.ts";
import { buildQNetScorerGraph } from "../onnx/qnet-scorer.ts";
import { GRAPH_IO } from "../types.ts";
import { type ScoreBatcherOptions, type ScoreJob, createScoreBatcher, fitRunCost } from "./score-batcher.ts";

const DIM = 8;
const ARCH: QNetArchitecture = { dims: [DIM, DIM, DIM, 1], activation: "gelu", doLayerNorm: true, layerNormBeforeResidual: true, doResidual: true, doResidualOnLast: false };
const TOLERANCE = 1e-5;

type EmbeddingType = "float32" | "float16";
const sessions = {} as Record<`single_${EmbeddingType}` | `batched_${EmbeddingType}`, ort.InferenceSession>;

beforeAll(async () => {
  for (const type of ["float32", "float16"] as const) {
    sessions[`single_${type}`] = await ort.InferenceSession.create(encodeModel(buildQNetScorerGraph(ARCH, { embeddingType: type })));
    sessions[`batched_${type}`] = await ort.InferenceSession.create(encodeBatchedQNetScorer(ARCH, { embeddingType: type }));
  }
});
afterAll(async () => {
  for (const s of Object.values(sessions)) await s.release();
});

/** Today's path: the single-query scorer session of the job's embedding type. */
async function scoreAlone(job: ScoreJob): Promise<Float32Array> {
  const type: EmbeddingType = job.embeddings instanceof Uint16Array ? "float16" : "float32";
  const rows = job.embeddings.length / DIM;
  const out = await sessions[`single_${type}`].run({ ...job.qnet, [GRAPH_IO.embeddings]: new ort.Tensor(type, job.embeddings, [rows, DIM]) });
  return out[GRAPH_IO.scores]!.data as Float32Array;
}

let seed = 1;
/** A registered-q-net-like record of tensors and `rows` random rows. */
function randomJob(rows: number, type: EmbeddingType = "float32", qnet?: Record<string, ort.Tensor>): ScoreJob {
  const rand = seededRandom(seed++);
  const values = randomFloats(rand, rows * DIM, 2);
  return { qnet: qnet ?? qnetTensors(rand), embeddings: type === "float16" ? float32ArrayToHalf(values) : values };
}

function qnetTensors(rand: () => number): Record<string, ort.Tensor> {
  const q = randomQNet(rand, ARCH);
  const d = ARCH.dims;
  const tensors: Record<string, ort.Tensor> = {};
  q.weights.forEach((w, i) => (tensors[GRAPH_IO.weight(i)] = new ort.Tensor("float32", w, [d[i]!, d[i + 1]!])));
  q.biases.forEach((b, j) => (tensors[GRAPH_IO.bias(j)] = new ort.Tensor("float32", b, [d[j + 1]!])));
  return tensors;
}

/**
 * A batcher over the real sessions that records what it ran: `batchedRuns` holds each batched run's
 * embeddings dims (and its weight_0 feed, to see the stacked-weights cache), `singles` the lone jobs.
 */
function recordingBatcher(
  options: Partial<ScoreBatcherOptions> & { batchedType?: EmbeddingType; failRuns?: number[]; failCreations?: number; singleWaitsFor?: Promise<void> } = {},
) {
  const batchedRuns: { dims: readonly number[]; weight0: ort.Tensor }[] = [];
  const singles: ScoreJob[] = [];
  let creations = 0;
  let runs = 0;
  const real = sessions[`batched_${options.batchedType ?? "float32"}`];
  const recording = {
    inputMetadata: real.inputMetadata,
    async run(feeds: Record<string, ort.Tensor>) {
      const run = runs++;
      batchedRuns.push({ dims: feeds[GRAPH_IO.embeddings]!.dims, weight0: feeds[GRAPH_IO.weight(0)]! });
      if (options.failRuns?.includes(run)) throw new Error(`batched run ${run} failed`);
      return real.run(feeds);
    },
  } as unknown as ort.InferenceSession;
  const batcher = createScoreBatcher({
    arch: ARCH,
    dim: DIM,
    single: async (job) => {
      singles.push(job);
      await options.singleWaitsFor;
      return scoreAlone(job);
    },
    batchedSession: async () => {
      if (creations++ < (options.failCreations ?? 0)) throw new Error("no device");
      return recording;
    },
    maxQueries: options.maxQueries,
    maxRows: options.maxRows,
    enabled: options.enabled,
    grouping: options.grouping,
  });
  return { batcher, batchedRuns, singles, creations: () => creations };
}

async function expectAloneScores(jobs: ScoreJob[], results: Float32Array[]): Promise<void> {
  for (const [k, job] of jobs.entries()) {
    const expected = await scoreAlone(job);
    expect(results[k]!.length, `job ${k}`).toBe(expected.length);
    expect(worstRelativeError(results[k]!, expected, TOLERANCE), `job ${k}`).toBeLessThanOrEqual(1);
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("createScoreBatcher", () => {
  it("scores jobs submitted in the same turn in one batched run, each as it would score alone (float32 and float16 rows)", async () => {
    for (const type of ["float32", "float16"] as const) {
      const { batcher, batchedRuns, singles } = recordingBatcher({ batchedType: type });
      const jobs = [5, 7, 4, 6].map((rows) => randomJob(rows, type));
      const results = await Promise.all(jobs.map((job) => batcher.submit(job)));
      expect(batchedRuns.map((r) => r.dims)).toEqual([[4, 7, DIM]]);
      expect(singles).toEqual([]);
      await expectAloneScores(jobs, results);
    }
  });

  it("matches one-at-a-time scores for random row counts, mixed float16/float32 rows and submission turns (property)", async () => {
    for (let round = 0; round < 6; round++) {
      const rand = seededRandom(900 + round);
      const { batcher, batchedRuns } = recordingBatcher({ maxQueries: 2 + Math.floor(rand() * 7), maxRows: 20 + Math.floor(rand() * 200) });
      const jobs = Array.from({ length: 3 + Math.floor(rand() * 10) }, () => randomJob(Math.floor(rand() * 40), rand() < 0.5 ? "float16" : "float32"));
      const results: Promise<Float32Array>[] = [];
      for (const job of jobs) {
        results.push(batcher.submit(job));
        if (rand() < 0.3) await nextTurn();
      }
      await expectAloneScores(jobs, await Promise.all(results));
      expect(batchedRuns.length, `round ${round} batches something`).toBeGreaterThan(0);
    }
  });

  it("sends a lone job through `single` and never creates the batched session for it", async () => {
    const { batcher, batchedRuns, singles, creations } = recordingBatcher();
    const job = randomJob(9);
    await expectAloneScores([job], [await batcher.submit(job)]);
    expect(singles).toEqual([job]);
    expect(batchedRuns).toEqual([]);
    expect(creations()).toBe(0);
  });

  it("groups the jobs submitted while a run is in flight into the next run", async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const { batcher, batchedRuns, singles } = recordingBatcher({ singleWaitsFor: gate });
    const first = randomJob(3);
    const firstResult = batcher.submit(first);
    await nextTurn();
    await nextTurn(); // the first job's run has started and waits on the gate
    const later = [randomJob(4), randomJob(4), randomJob(2)];
    const laterResults = later.map((job) => batcher.submit(job));
    await nextTurn();
    expect(batchedRuns).toEqual([]); // nothing else runs while the first is in flight
    open();
    await expectAloneScores([first, ...later], await Promise.all([firstResult, ...laterResults]));
    expect(singles).toEqual([first]);
    expect(batchedRuns.map((r) => r.dims)).toEqual([[3, 4, DIM]]);
  });

  it("keeps groups within maxQueries and maxRows padded rows, oldest first", async () => {
    const byQueries = recordingBatcher({ maxQueries: 2 });
    const jobs = [1, 2, 3, 4, 5].map(() => randomJob(6));
    await expectAloneScores(jobs, await Promise.all(jobs.map((job) => byQueries.batcher.submit(job))));
    expect(byQueries.batchedRuns.map((r) => r.dims)).toEqual([[2, 6, DIM], [2, 6, DIM]]);
    expect(byQueries.singles).toEqual([jobs[4]]);

    const byRows = recordingBatcher({ maxRows: 25 });
    const rowJobs = [10, 10, 10, 10, 30].map((rows) => randomJob(rows));
    await expectAloneScores(rowJobs, await Promise.all(rowJobs.map((job) => byRows.batcher.submit(job))));
    expect(byRows.batchedRuns.map((r) => r.dims)).toEqual([[2, 10, DIM], [2, 10, DIM]]);
    expect(byRows.singles).toEqual([rowJobs[4]]); // 30 rows exceed maxRows: alone, on today's path
  });

  it("with a fixed minimum fill, pads a group only that far (before measuring runs, the adaptive rule uses 0.5)", async () => {
    for (const grouping of [{ minPaddedFill: 0.5 }, "adaptive"] as const) {
      const { batcher, batchedRuns } = recordingBatcher({ grouping });
      const jobs = [40, 2, 2, 2].map((rows) => randomJob(rows));
      await expectAloneScores(jobs, await Promise.all(jobs.map((job) => batcher.submit(job))));
      // 40+2 of 80 padded rows; a third job would make 44 of 120.
      expect(batchedRuns.map((r) => r.dims)).toEqual([[2, 40, DIM], [2, 2, DIM]]);
    }
    const strict = recordingBatcher({ grouping: { minPaddedFill: 1 } });
    const jobs = [5, 6, 5, 6, 4].map((rows) => randomJob(rows));
    await expectAloneScores(jobs, await Promise.all(jobs.map((job) => strict.batcher.submit(job))));
    expect(strict.batchedRuns.map((r) => r.dims)).toEqual([[2, 5, DIM], [2, 6, DIM]]);
    expect(strict.singles).toEqual([jobs[4]]);
    expect(() => recordingBatcher({ grouping: { minPaddedFill: 1.5 } })).toThrow(/minPaddedFill must be in \[0, 1\]/);
  });

  it("widens float16 rows exactly for a float32 batched graph, and keeps float32 rows off a float16 one", async () => {
    const { batcher, batchedRuns, singles } = recordingBatcher({ batchedType: "float16" });
    const jobs = [randomJob(5, "float32"), randomJob(5, "float16"), randomJob(6, "float32"), randomJob(4, "float16")];
    await expectAloneScores(jobs, await Promise.all(jobs.map((job) => batcher.submit(job))));
    expect(batchedRuns.map((r) => r.dims)).toEqual([[2, 5, DIM]]);
    expect(new Set(singles)).toEqual(new Set([jobs[0], jobs[2]]));
  });

  it("rejects only the failed group's jobs, and retries a batched session that could not be created", async () => {
    const failing = recordingBatcher({ maxQueries: 2, failRuns: [0] });
    const jobs = [1, 2, 3, 4].map(() => randomJob(3));
    const settled = await Promise.allSettled(jobs.map((job) => failing.batcher.submit(job)));
    expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected", "fulfilled", "fulfilled"]);
    expect((settled[0] as PromiseRejectedResult).reason).toMatchObject({ message: "batched run 0 failed" });
    await expectAloneScores(jobs.slice(2), settled.slice(2).map((s) => (s as PromiseFulfilledResult<Float32Array>).value));

    const noDevice = recordingBatcher({ maxQueries: 2, failCreations: 1 });
    const more = [1, 2, 3, 4].map(() => randomJob(3));
    const outcome = await Promise.allSettled(more.map((job) => noDevice.batcher.submit(job)));
    expect(outcome.map((s) => s.status)).toEqual(["rejected", "rejected", "fulfilled", "fulfilled"]);
    expect(noDevice.creations()).toBe(2);
  });

  it("reuses the stacked weights while the same q-nets meet again, in any order, and restacks for new ones", async () => {
    const { batcher, batchedRuns } = recordingBatcher();
    const [a, b, c] = [randomJob(4), randomJob(4), randomJob(4)];
    const round = async (...jobs: ScoreJob[]) => {
      // Fresh rows each round, as a search's next frontier; the q-net records stay the same objects.
      const fresh = jobs.map((job) => randomJob(job.embeddings.length / DIM, "float32", job.qnet));
      await expectAloneScores(fresh, await Promise.all(fresh.map((job) => batcher.submit(job))));
    };
    await round(a, b);
    await round(b, a);
    await round(a, c);
    expect(batchedRuns).toHaveLength(3);
    expect(batchedRuns[1]!.weight0).toBe(batchedRuns[0]!.weight0);
    expect(batchedRuns[2]!.weight0).not.toBe(batchedRuns[0]!.weight0);
  });

  it("rejects a malformed job alone, answers an empty one without a run, and checks its options", async () => {
    const { batcher, batchedRuns, singles } = recordingBatcher();
    const good = [randomJob(3), randomJob(3)];
    const bad: ScoreJob = { qnet: good[0]!.qnet, embeddings: new Float32Array(DIM + 1) };
    const wrongNet: ScoreJob = { qnet: { ...good[0]!.qnet, [GRAPH_IO.bias(1)]: new ort.Tensor("float32", new Float32Array(3), [3]) }, embeddings: new Float32Array(DIM) };
    const [r0, rBad, rWrong, r1, rEmpty] = await Promise.allSettled([
      batcher.submit(good[0]!),
      batcher.submit(bad),
      batcher.submit(wrongNet),
      batcher.submit(good[1]!),
      batcher.submit({ qnet: good[0]!.qnet, embeddings: new Uint16Array(0) }),
    ]);
    expect(rBad).toMatchObject({ status: "rejected", reason: { message: expect.stringMatching(/not a whole number of 8-wide rows/) } });
    expect(rWrong).toMatchObject({ status: "rejected", reason: { message: expect.stringMatching(/bias_1 must be float32 with 8 values/) } });
    expect(rEmpty).toMatchObject({ status: "fulfilled", value: new Float32Array(0) });
    await expectAloneScores(good, [r0, r1].map((s) => (s as PromiseFulfilledResult<Float32Array>).value));
    expect(batchedRuns.map((r) => r.dims)).toEqual([[2, 3, DIM]]);
    expect(singles).toEqual([]);

    const single = scoreAlone;
    const batchedSession = async () => sessions.batched_float32;
    expect(() => createScoreBatcher({ arch: ARCH, dim: 16, single, batchedSession })).toThrow(/expects 8-d inputs/);
    expect(() => createScoreBatcher({ arch: ARCH, dim: DIM, single, batchedSession, maxQueries: 0 })).toThrow(/maxQueries must be a positive integer/);
  });

  it("fits a run's cost as fixed + perRow·rows + perQuery·queries, and declines data that cannot determine it", () => {
    const truth = { fixed: 0.4, perRow: 0.02, perQuery: 1.5 };
    const runs = [
      [10, 1], [200, 1], [50, 1], [80, 2], [300, 4], [640, 8], [1000, 8], [120, 3],
    ].map(([rows, queries]) => ({ rows: rows!, queries: queries!, ms: truth.fixed + truth.perRow * rows! + truth.perQuery * queries! }));
    const fit = fitRunCost(runs)!;
    for (const key of ["fixed", "perRow", "perQuery"] as const) expect(fit[key]).toBeCloseTo(truth[key], 6);
    expect(fit.fixedLowerBound).toBeCloseTo(truth.fixed, 6); // exact timings: no doubt about the fixed cost
    // Timing noise lowers the bound the batcher pads against.
    const jittered = fitRunCost(runs.map((r, k) => ({ ...r, ms: r.ms + (k % 2 === 0 ? 0.3 : -0.3) })))!;
    expect(jittered.fixedLowerBound).toBeLessThan(jittered.fixed - 0.1);
    // Only single runs: queries never varies, so fixed and perQuery cannot be told apart.
    expect(fitRunCost(runs.filter((r) => r.queries === 1).map((r) => r))).toBeUndefined();
    expect(fitRunCost([])).toBeUndefined();
    // Noise that would make a coefficient negative is clamped: costs are never negative.
    const noisy = fitRunCost([{ rows: 10, queries: 1, ms: 5 }, { rows: 100, queries: 1, ms: 4 }, { rows: 50, queries: 2, ms: 3 }, { rows: 200, queries: 4, ms: 2 }])!;
    expect(Math.min(noisy.fixed, noisy.perRow, noisy.perQuery, noisy.fixedLowerBound)).toBeGreaterThanOrEqual(0);
  });

  it("with enabled: false, scores every job through `single`", async () => {
    const { batcher, batchedRuns, singles, creations } = recordingBatcher({ enabled: false });
    const jobs = [randomJob(3), randomJob(5)];
    await expectAloneScores(jobs, await Promise.all(jobs.map((job) => batcher.submit(job))));
    expect(singles).toEqual(jobs);
    expect(batchedRuns).toEqual([]);
    expect(creations()).toBe(0);
  });
});
