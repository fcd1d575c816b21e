/**
 * Batched scoring across queries, inside the inference thread. When several searches are in flight,
 * their score calls arrive while a run is in progress (onnxruntime-node runs block this thread) or in
 * the same turn of the event loop; the batcher scores them together in one run of the batched scorer
 * graph (../onnx/qnet-scorer-batched.ts): rows padded to the group's longest job, weights stacked
 * along a query axis, scores split back per job. A job alone goes through `single`, today's path.
 *
 * Grouping is oldest-first, so no job waits behind later ones: the oldest pending job anchors the
 * next group, and later jobs join it while the group stays within maxQueries and maxRows padded rows,
 * and while padding pays: a padded row costs as much as a real one on the CPU, where batching saves
 * only a run's fixed cost, while a GPU pads almost for free and saves launches and transfers. So the
 * batcher measures its own runs (ms ≈ fixed + perRow·rows + perQuery·queries, see fitRunCost) and lets
 * a job join when the padding it adds surely costs less than the run it saves (judged against a lower
 * bound of the fixed cost, so noisy timings mean less padding). Equal-sized jobs always join. Until
 * it has measured enough runs, or with `grouping: { minPaddedFill }`, a fixed rule applies instead:
 * real rows fill at least that share of the padded ones. One group runs at a time; a group's failure rejects only its jobs.
 *
 * Stacking copies every member's weights (about 14 MB for a 6-layer 768-d q-net), so the stacked
 * weights of the last group are kept and reused while the same q-nets keep meeting (concurrent
 * searches step together, so they usually do): this costs up to maxQueries q-nets of memory.
 */
import * as ort from "onnxruntime-node";
import { halfToFloat32Array } from "../../../../shared/qnet/half.ts";
import { type QNetArchitecture, hiddenLayerCount } from "../../../../shared/qnet/types.ts";
import { DEFAULT_SCORE_BATCH_ROWS } from "../../search/row-scorer.ts";
import { GRAPH_IO } from "../types.ts";

import type { ScoreJob } from "./score-job.ts";

export type { ScoreJob };

export interface ScoreBatcherOptions {
  arch: QNetArchitecture;
  dim: number;
  /** today's path: one query per call (the existing single-query session). */
  single: (job: ScoreJob) => Promise<Float32Array>;
  /** creates the batched session lazily (so the thread owns device choice). */
  batchedSession: () => Promise<ort.InferenceSession>;
  maxQueries?: number;
  maxRows?: number;
  enabled?: boolean;
  /** "adaptive" (default): pad when the measured run cost says it pays; or a fixed minimum fill of real rows. */
  grouping?: "adaptive" | { minPaddedFill: number };
}

export interface ScoreBatcher {
  /** Scores job.embeddings with job.qnet; result[i] is row i's score. */
  submit(job: ScoreJob): Promise<Float32Array>;
}

export const SCORE_BATCHER_DEFAULTS = {
  /** Queries per batched run. */
  maxQueries: 8,
  /** Padded rows (queries × longest job) per batched run: the single scorer's batch bound, so activation memory stays as today. */
  maxRows: DEFAULT_SCORE_BATCH_ROWS,
} as const;

/**
 * The fixed rule (before the cost model has data): a group's real rows fill at least this share of its
 * padded [queries, longest] rows, so padding may at most double a group's work.
 */
export const MIN_PADDED_FILL = 0.5;

/** Runs the cost model remembers, in effect (older ones fade): the device's cost changes slowly. */
const COST_MEMORY_RUNS = 64;
/** Runs measured before the cost model replaces the fixed rule. */
const COST_MIN_RUNS = 8;

/** What one scorer run costs, in ms: fixed + perRow·(padded rows) + perQuery·(queries). */
export interface RunCost {
  fixed: number;
  perRow: number;
  perQuery: number;
  /**
   * fixed − 2 standard errors (≥ 0): what a run surely costs besides its rows and queries. Padding is
   * judged against this, so noisy timings (a shared machine) make the batcher pad less, never more.
   */
  fixedLowerBound: number;
}

/**
 * Weighted least squares fit of ms ≈ fixed + perRow·rows + perQuery·queries; undefined when the runs
 * do not determine it (too few, or rows and queries never varied independently). Coefficients that
 * noise makes negative are clamped to 0.
 */
export function fitRunCost(runs: readonly { rows: number; queries: number; ms: number; weight?: number }[]): RunCost | undefined {
  const m = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  const v = [0, 0, 0];
  let total = 0;
  for (const r of runs) {
    const w = r.weight ?? 1;
    const x = [1, r.rows, r.queries];
    for (let i = 0; i < 3; i++) {
      v[i] += w * x[i]! * r.ms;
      for (let j = 0; j < 3; j++) m[i * 3 + j] += w * x[i]! * x[j]!;
    }
    total += w;
  }
  const det = det3(m);
  // Relative to the diagonal's scale: a near-singular system (no independent variation) is no fit.
  if (!(total > 0 && Math.abs(det) > 1e-9 * m[0]! * m[4]! * m[8]!)) return undefined;
  const solve = (k: number) => det3(m.map((x, idx) => (idx % 3 === k ? v[Math.floor(idx / 3)]! : x))) / det;
  const [fixed, perRow, perQuery] = [solve(0), solve(1), solve(2)];
  let squaredResiduals = 0;
  for (const r of runs) squaredResiduals += (r.weight ?? 1) * (r.ms - fixed - perRow * r.rows - perQuery * r.queries) ** 2;
  const degreesOfFreedom = total - 3;
  // var(fixed) = σ²·[(XᵀWX)⁻¹]₀₀, and [(XᵀWX)⁻¹]₀₀ is the (0,0) cofactor over the determinant.
  const fixedError = degreesOfFreedom > 0 ? Math.sqrt((squaredResiduals / degreesOfFreedom) * ((m[4]! * m[8]! - m[5]! * m[7]!) / det)) : Infinity;
  return {
    fixed: Math.max(0, fixed),
    perRow: Math.max(0, perRow),
    perQuery: Math.max(0, perQuery),
    fixedLowerBound: Math.max(0, fixed - 2 * fixedError),
  };
}

function det3(a: number[]): number {
  return a[0]! * (a[4]! * a[8]! - a[5]! * a[7]!) - a[1]! * (a[3]! * a[8]! - a[5]! * a[6]!) + a[2]! * (a[3]! * a[7]! - a[4]! * a[6]!);
}

interface Pending {
  job: ScoreJob;
  rows: number;
  resolve: (scores: Float32Array) => void;
  reject: (error: unknown) => void;
}

export function createScoreBatcher(options: ScoreBatcherOptions): ScoreBatcher {
  const { arch, dim, single } = options;
  const maxQueries = options.maxQueries ?? SCORE_BATCHER_DEFAULTS.maxQueries;
  const maxRows = options.maxRows ?? SCORE_BATCHER_DEFAULTS.maxRows;
  for (const [name, value] of Object.entries({ dim, maxQueries, maxRows })) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`score batcher: ${name} must be a positive integer, got ${value}`);
  }
  if (arch.dims[0] !== dim) throw new RangeError(`score batcher: the q-net expects ${arch.dims[0]}-d inputs, dim is ${dim}`);
  const d = arch.dims;
  const hidden = hiddenLayerCount(arch);
  const tensorShapes = new Map<string, number>();
  d.slice(0, -1).forEach((inSize, i) => tensorShapes.set(GRAPH_IO.weight(i), inSize * d[i + 1]!));
  for (let j = 0; j < hidden; j++) tensorShapes.set(GRAPH_IO.bias(j), d[j + 1]!);

  if (options.enabled === false) {
    return { submit: (job) => validated(job).then(() => single(job)) };
  }

  const pending: Pending[] = [];
  let scheduled = false;
  let running = false;
  let session: Promise<ort.InferenceSession> | undefined;
  /** float16 when the batched graph takes half embeddings; known once the session exists. */
  let sessionTakesHalf: boolean | undefined;
  const stacked = stackedWeightsCache(d, hidden);
  const grouping = options.grouping ?? "adaptive";
  if (grouping !== "adaptive" && !(grouping.minPaddedFill >= 0 && grouping.minPaddedFill <= 1)) {
    throw new RangeError(`score batcher: grouping.minPaddedFill must be in [0, 1], got ${grouping.minPaddedFill}`);
  }
  const costs = runCostModel();

  /** Rejects a job whose shapes do not match the architecture (only that job). */
  async function validated(job: ScoreJob): Promise<number> {
    const { embeddings } = job;
    if (!(embeddings instanceof Float32Array) && !(embeddings instanceof Uint16Array)) {
      throw new TypeError("score batcher: embeddings must be a Float32Array or Uint16Array (float16 bits)");
    }
    if (embeddings.length % dim !== 0) {
      throw new RangeError(`score batcher: ${embeddings.length} values is not a whole number of ${dim}-wide rows`);
    }
    for (const [name, size] of tensorShapes) {
      const t = job.qnet[name];
      if (!t || t.type !== "float32" || (t.data as Float32Array).length !== size) {
        throw new RangeError(`score batcher: q-net tensor ${name} must be float32 with ${size} values`);
      }
    }
    return embeddings.length / dim;
  }

  /** Whether a job can join a batched run (a float16 graph cannot take float32 rows without rounding them). */
  const batchable = (p: Pending) => !(sessionTakesHalf === true && p.job.embeddings instanceof Float32Array);

  function schedule(): void {
    if (scheduled || running || pending.length === 0) return;
    scheduled = true;
    // setImmediate, not a microtask: the messages that arrived during the last run are delivered
    // first, so they join this group instead of waiting for the next.
    setImmediate(() => {
      scheduled = false;
      void runNext();
    });
  }

  async function runNext(): Promise<void> {
    if (running || pending.length === 0) return;
    running = true;
    try {
      await runGroup(takeGroup());
    } finally {
      running = false;
      schedule();
    }
  }

  /**
   * Whether a job of `rows` joins a group of `queries` jobs padded to `longest` (`real` real rows):
   * by the measured cost, when the padding it adds costs less than the run it saves (the per-query
   * cost is paid either way); otherwise by the fixed fill rule.
   */
  function paysToJoin(queries: number, longest: number, real: number, rows: number): boolean {
    const padded = (queries + 1) * Math.max(longest, rows);
    const cost = grouping === "adaptive" ? costs.estimate() : undefined;
    if (cost) return cost.perRow * (padded - queries * longest - rows) <= cost.fixedLowerBound;
    const minFill = grouping === "adaptive" ? MIN_PADDED_FILL : grouping.minPaddedFill;
    return real + rows >= minFill * padded;
  }

  /** The oldest pending job and the later ones that fit with it; removed from `pending`. */
  function takeGroup(): Pending[] {
    const anchor = pending[0]!;
    const group = [anchor];
    if (batchable(anchor) && anchor.rows <= maxRows) {
      let longest = anchor.rows;
      let real = anchor.rows;
      for (let i = 1; i < pending.length && group.length < maxQueries; i++) {
        const p = pending[i]!;
        if (!batchable(p)) continue;
        if ((group.length + 1) * Math.max(longest, p.rows) > maxRows || !paysToJoin(group.length, longest, real, p.rows)) continue;
        group.push(p);
        longest = Math.max(longest, p.rows);
        real += p.rows;
      }
    }
    const taken = new Set(group);
    const rest = pending.filter((p) => !taken.has(p));
    pending.length = 0;
    pending.push(...rest);
    return group;
  }

  async function runGroup(group: Pending[]): Promise<void> {
    if (group.length === 1) {
      const [p] = group as [Pending];
      const t0 = performance.now();
      await single(p.job).then((scores) => (costs.observe(p.rows, 1, performance.now() - t0), p.resolve(scores)), p.reject);
      return;
    }
    try {
      const scorer = await batchedScorer();
      if (sessionTakesHalf && group.some((p) => !batchable(p))) {
        // Only possible for the very first group (picked before the session's input type was known):
        // put the float32 jobs back, oldest first, and run the rest.
        const back = group.filter((p) => !batchable(p));
        pending.unshift(...back);
        const rest = group.filter(batchable);
        if (rest.length === 1) return await runGroup(rest);
        if (rest.length === 0) return;
        group = rest;
      }
      const scores = await runBatched(scorer, group);
      group.forEach((p, q) => p.resolve(scores[q]!));
    } catch (error) {
      for (const p of group) p.reject(error);
    }
  }

  function batchedScorer(): Promise<ort.InferenceSession> {
    session ??= options.batchedSession().then(
      (created) => {
        const input = created.inputMetadata.find((m) => m.name === GRAPH_IO.embeddings);
        if (!input || !input.isTensor || (input.type !== "float32" && input.type !== "float16")) {
          throw new Error(`score batcher: the batched session has no float32 or float16 "${GRAPH_IO.embeddings}" input`);
        }
        sessionTakesHalf = input.type === "float16";
        return created;
      },
      (error: unknown) => {
        // Forget the failure, so a later group tries again (this group's jobs are rejected).
        session = undefined;
        throw error;
      },
    );
    return session;
  }

  async function runBatched(scorer: ort.InferenceSession, group: Pending[]): Promise<Float32Array[]> {
    // Members in q-net order, so the same q-nets meeting again hit the stacked-weights cache.
    const order = [...group.keys()].sort((a, b) => stacked.idOf(group[a]!.job.qnet) - stacked.idOf(group[b]!.job.qnet));
    const members = order.map((k) => group[k]!);
    const longest = Math.max(...members.map((p) => p.rows));
    const Q = members.length;
    const width = longest * dim;
    let embeddings: ort.Tensor;
    if (sessionTakesHalf) {
      const padded = new Uint16Array(Q * width);
      members.forEach((p, q) => padded.set(p.job.embeddings as Uint16Array, q * width));
      embeddings = new ort.Tensor("float16", padded, [Q, longest, dim]);
    } else {
      const padded = new Float32Array(Q * width);
      members.forEach((p, q) => {
        const rows = p.job.embeddings;
        // half → float32 is exact, so a float32 graph scores half rows exactly as a float16 one would.
        if (rows instanceof Uint16Array) halfToFloat32Array(rows, padded.subarray(q * width, q * width + rows.length));
        else padded.set(rows, q * width);
      });
      embeddings = new ort.Tensor("float32", padded, [Q, longest, dim]);
    }
    const t0 = performance.now();
    const out = await scorer.run({ ...stacked.feeds(members.map((p) => p.job.qnet)), [GRAPH_IO.embeddings]: embeddings });
    costs.observe(Q * longest, Q, performance.now() - t0);
    const scores = out[GRAPH_IO.scores];
    if (!scores || scores.type !== "float32" || scores.dims.length !== 2 || scores.dims[0] !== Q || scores.dims[1] !== longest) {
      throw new Error(`score batcher: the batched scorer returned ${scores ? `${scores.type} [${scores.dims.join(",")}]` : "no scores"}, expected float32 [${Q},${longest}]`);
    }
    const data = scores.data as Float32Array;
    const byMember = members.map((p, q) => data.slice(q * longest, q * longest + p.rows));
    // Back to the group's own order.
    const result: Float32Array[] = new Array(Q);
    order.forEach((k, q) => (result[k] = byMember[q]!));
    return result;
  }

  return {
    async submit(job: ScoreJob): Promise<Float32Array> {
      const rows = await validated(job);
      if (rows === 0) return new Float32Array(0);
      return new Promise<Float32Array>((resolve, reject) => {
        pending.push({ job, rows, resolve, reject });
        schedule();
      });
    },
  };
}

/** The measured runs, fading (weight decays by 1/COST_MEMORY_RUNS per run), and the fit over them. */
function runCostModel() {
  const runs: { rows: number; queries: number; ms: number; weight: number }[] = [];
  let fit: RunCost | undefined;
  let measured = 0;
  const keep = 1 - 1 / COST_MEMORY_RUNS;
  return {
    observe(rows: number, queries: number, ms: number): void {
      for (const r of runs) r.weight *= keep;
      runs.push({ rows, queries, ms, weight: 1 });
      // Runs faded below 1% no longer matter to the fit.
      while (runs.length > 0 && runs[0]!.weight < 0.01) runs.shift();
      measured++;
      fit = measured >= COST_MIN_RUNS ? fitRunCost(runs) : undefined;
    },
    estimate: (): RunCost | undefined => fit,
  };
}

/**
 * The stacked [Q, …] weight and bias feeds of the last group, kept while the same q-nets (by object
 * identity, as the thread registers them) meet again. Ids come from a WeakMap, so the cache never
 * keeps a released q-net's own tensors alive and a new q-net never reuses an old one's id.
 */
function stackedWeightsCache(d: number[], hidden: number) {
  const ids = new WeakMap<Record<string, ort.Tensor>, number>();
  let nextId = 1;
  let last: { key: string; feeds: Record<string, ort.Tensor> } | undefined;

  const idOf = (qnet: Record<string, ort.Tensor>): number => {
    let id = ids.get(qnet);
    if (id === undefined) ids.set(qnet, (id = nextId++));
    return id;
  };

  const stack = (qnets: Record<string, ort.Tensor>[], name: string, dims: number[]): ort.Tensor => {
    const size = dims.reduce((a, b) => a * b, 1);
    const out = new Float32Array(qnets.length * size);
    qnets.forEach((qnet, q) => out.set(qnet[name]!.data as Float32Array, q * size));
    return new ort.Tensor("float32", out, [qnets.length, ...dims]);
  };

  return {
    idOf,
    feeds(qnets: Record<string, ort.Tensor>[]): Record<string, ort.Tensor> {
      const key = qnets.map(idOf).join(",");
      if (last?.key === key) return last.feeds;
      last = undefined; // drop the old stack before allocating the new one
      const feeds: Record<string, ort.Tensor> = {};
      d.slice(0, -1).forEach((inSize, i) => (feeds[GRAPH_IO.weight(i)] = stack(qnets, GRAPH_IO.weight(i), [inSize, d[i + 1]!])));
      for (let j = 0; j < hidden; j++) feeds[GRAPH_IO.bias(j)] = stack(qnets, GRAPH_IO.bias(j), [1, d[j + 1]!]);
      last = { key, feeds };
      return feeds;
    },
  };
}
