/**
 * Approximate search over a kNN graph of document embeddings, scoring with the q-net as it walks.
 *
 * variant "published" is the Hypencoder paper's HypecoderGraphRetriever.retrieve, step for step:
 *   C ← entry set (random rows); T ← empty top-k; everything in C is marked visited.
 *   repeat up to maxIter times:
 *     score C (one scorer call); S ← the best max(ncandidates, k) of C;
 *     offer S to T; the best ncandidates of S are the candidates: their unvisited neighbours,
 *     marked visited, form the next C;
 *     stop early (earlyStop) when nothing entered T; stop when C is empty.
 * The subtle part: candidates are the best of the CURRENT frontier, not of T or of all scored rows,
 * so a good row that ranks just below the cut in its frontier is never expanded, and a frontier of
 * poor rows is still expanded. (Offering only S to T loses nothing: a row outside S is beaten by
 * max(ncandidates, k) ≥ k rows of its own frontier.)
 *
 * variant "best-first" fixes that: every scored, unexpanded row waits in a max-heap, and each step
 * expands the best ncandidates of those among the best max(ncandidates, k) rows scored so far (the
 * working set, HNSW's ef), batched into one scorer call. With earlyStop it ends once no unexpanded
 * row is in the working set, i.e. once expanding could only start from rows already beaten.
 *
 * variant "proxy" is best-first with a second entry set found near the answer: after the first
 * frontier (the entry rows and a few random rows) is scored, `seedRows` is asked for `proxySeeds` rows given
 * the best hits so far; the shard search answers with the rows of largest inner product with the
 * q-net's gradient at the best hits (shared/qnet/gradient.ts), from the shard's inner-product index.
 * Those rows, less any already scored, are the second frontier; from then on the walk is
 * best-first. One dot product per proxy candidate replaces a q-net evaluation, so the walk starts
 * beside the answer instead of climbing to it from 10,000 random rows. Without `seedRows` it is
 * plain best-first.
 *
 * All variants accept `entryRows` (e.g. k-means medoids chosen at index build time): they are
 * placed in the entry set first (at most `entryPoints` of them), and random rows fill it up to
 * `entryPoints`. So with entryPoints ≥ the row count every variant scores every row first and
 * equals exhaustive search.
 *
 * `isDead` (a living index's deleted or replaced rows): dead rows are scored and expanded like any
 * other, so the graph stays connected through them, but they never enter the top-k. The published
 * step then offers every live row of the frontier to T, not only its best max(ncandidates, k): a
 * live row below that cut may be beaten only by dead rows. Without dead rows the two are the same.
 * Its early stop ignores a frontier without live rows: with a filter (non-matching rows are dead)
 * such a frontier is common and says nothing about whether better matches lie further on.
 */
import { GRAPH_SEARCH_VARIANTS, type GraphSearchVariant, proxyEntryPoints, SEARCH_DEFAULTS, variantDefaults } from "../../../shared/api/worker-api.ts";
import { SEED_MAX } from "../../../shared/random.ts";
import { checkScoreCount } from "./exhaustive.ts";
import { sampleUnmarked, seededRandom } from "./random.ts";
import type { RowScorer } from "./row-scorer.ts";
import { type RowHit, TopK } from "./topk.ts";
import { checkInteger } from "./validate.ts";

/** The adjacency lists of a kNN graph: row r's neighbours are neighbors[offsets[r] .. offsets[r+1]). */
export interface NeighborGraph {
  offsets: Uint32Array;
  neighbors: Uint32Array;
}

export { GRAPH_SEARCH_VARIANTS, type GraphSearchVariant };

/**
 * Defaults when graphSearch is called directly (tests, benchmarks): the published walk. The walk's
 * own parameters default per variant (variantDefaults); the API's defaults are SEARCH_DEFAULTS.
 */
export const GRAPH_SEARCH_DEFAULTS = {
  k: SEARCH_DEFAULTS.k,
  earlyStop: SEARCH_DEFAULTS.earlyStop,
  seed: SEARCH_DEFAULTS.seed,
  variant: "published" as GraphSearchVariant,
};

export interface GraphSearchProgress {
  /** 1-based number of scoring steps done. */
  iteration: number;
  /** The best hits so far, best first. */
  topK: RowHit[];
  /** Rows scored so far. */
  scored: number;
}

export interface GraphSearchOptions {
  k?: number;
  /** Size of the first frontier, capped at the corpus size. */
  entryPoints?: number;
  /** Rows expanded per step. */
  ncandidates?: number;
  /** Maximum number of scoring steps. */
  maxIter?: number;
  earlyStop?: boolean;
  /** Seeds the entry-point sample; the same seed gives the same results. */
  seed?: number;
  variant?: GraphSearchVariant;
  /** Rows placed in the entry set before the random ones (duplicates are ignored). */
  entryRows?: Uint32Array;
  /** variant "proxy": how many rows to ask seedRows for (0: plain best-first). */
  proxySeeds?: number;
  /**
   * variant "proxy": rows near the answer given the best hits of the first frontier (best first),
   * e.g. by inner product with the q-net's gradient. Rows out of range are an error; rows already
   * scored are skipped.
   */
  seedRows?: (best: readonly RowHit[], count: number) => Promise<Uint32Array>;
  /** Tags the hits; defaults to 0. */
  shard?: number;
  /** Rows that are walked through but never returned (deleted or replaced documents). */
  isDead?: (row: number) => boolean;
  onIteration?: (progress: GraphSearchProgress) => void;
  /** Checked before each scoring step: an aborted search throws the signal's reason. */
  signal?: AbortSignal;
}

export type StoppedBy = "max_iter" | "empty" | "early_stop";

export interface GraphSearchStats {
  docsScored: number;
  iterations: number;
  msScoring: number;
  msTotal: number;
  stoppedBy: StoppedBy;
}

export interface GraphSearchResult {
  hits: RowHit[];
  stats: GraphSearchStats;
}

interface ResolvedOptions {
  k: number;
  entryPoints: number;
  proxySeeds: number;
  ncandidates: number;
  maxIter: number;
  earlyStop: boolean;
  seed: number;
  variant: GraphSearchVariant;
}

/** Validates the options (RangeError with the offending name) and applies defaults and caps. */
export function resolveGraphSearchOptions(options: GraphSearchOptions, rowCount: number): ResolvedOptions {
  const d = GRAPH_SEARCH_DEFAULTS;
  const variant = options.variant ?? d.variant;
  if (!GRAPH_SEARCH_VARIANTS.includes(variant)) {
    throw new RangeError(`variant must be one of ${GRAPH_SEARCH_VARIANTS.join(", ")}, got ${String(variant)}`);
  }
  const vd = variantDefaults(variant);
  const k = checkInteger("k", options.k ?? d.k, 1);
  const entryPoints = checkInteger("entryPoints", options.entryPoints ?? vd.entryPoints ?? proxyEntryPoints(rowCount, options.entryRows?.length ?? 0), 1);
  const ncandidates = checkInteger("ncandidates", options.ncandidates ?? vd.ncandidates, 1);
  const maxIter = checkInteger("maxIter", options.maxIter ?? vd.maxIter, 1);
  const proxySeeds = checkInteger("proxySeeds", options.proxySeeds ?? vd.proxySeeds, 0);
  const seed = checkInteger("seed", options.seed ?? d.seed, 0, SEED_MAX);
  const earlyStop = options.earlyStop ?? d.earlyStop;
  if (typeof earlyStop !== "boolean") throw new RangeError(`earlyStop must be a boolean, got ${String(earlyStop)}`);
  return { k: Math.min(k, rowCount), entryPoints: Math.min(entryPoints, rowCount), proxySeeds, ncandidates, maxIter, earlyStop, seed, variant };
}

export async function graphSearch(
  scorer: RowScorer,
  graph: NeighborGraph,
  options: GraphSearchOptions = {},
): Promise<GraphSearchResult> {
  const started = performance.now();
  const rowCount = checkGraph(graph);
  const opts = resolveGraphSearchOptions(options, rowCount);
  const shard = options.shard ?? 0;
  const visited = new Uint8Array(rowCount);
  const frontier = entrySet(options.entryRows, rowCount, opts, visited);
  const top = new TopK(opts.k);
  const state: WalkState = {
    scorer,
    graph,
    opts,
    shard,
    visited,
    top,
    docsScored: 0,
    msScoring: 0,
    isDead: options.isDead,
    onIteration: options.onIteration,
    signal: options.signal,
  };
  const step =
    opts.variant === "published" ? publishedStep(state) : opts.variant === "proxy" && options.seedRows ? proxyStep(state, options.seedRows) : bestFirstStep(state);
  const { iterations, stoppedBy } = await walk(state, frontier, step);
  return {
    hits: top.sorted(shard),
    stats: { docsScored: state.docsScored, iterations, msScoring: state.msScoring, msTotal: performance.now() - started, stoppedBy },
  };
}

interface WalkState {
  scorer: RowScorer;
  graph: NeighborGraph;
  opts: ResolvedOptions;
  shard: number;
  visited: Uint8Array;
  top: TopK;
  docsScored: number;
  msScoring: number;
  isDead: ((row: number) => boolean) | undefined;
  onIteration: ((progress: GraphSearchProgress) => void) | undefined;
  signal: AbortSignal | undefined;
}

/** O(1) consistency checks; neighbour ids are checked as they are expanded. Returns the row count. */
function checkGraph(graph: NeighborGraph): number {
  const { offsets, neighbors } = graph;
  if (!(offsets instanceof Uint32Array) || offsets.length < 1) throw new RangeError("graph.offsets must be a Uint32Array of rowCount + 1 entries");
  if (offsets[0] !== 0 || offsets[offsets.length - 1] !== neighbors.length) {
    throw new RangeError(
      `graph.offsets must run from 0 to neighbors.length (${neighbors.length}), got ${offsets[0]}..${offsets[offsets.length - 1]}`,
    );
  }
  return offsets.length - 1;
}

/** The first frontier: entryRows first, then random unvisited rows up to entryPoints; all marked visited. */
function entrySet(entryRows: Uint32Array | undefined, rowCount: number, opts: ResolvedOptions, visited: Uint8Array): number[] {
  const frontier: number[] = [];
  for (const row of entryRows ?? []) {
    if (row >= rowCount) throw new RangeError(`entryRows contains row ${row}, but the shard has ${rowCount} rows`);
    if (frontier.length === opts.entryPoints) break;
    if (visited[row] !== 0) continue;
    visited[row] = 1;
    frontier.push(row);
  }
  const random = opts.entryPoints - frontier.length;
  if (random > 0) sampleUnmarked(seededRandom(opts.seed), rowCount, visited, frontier.length, random, frontier);
  return frontier;
}

/** Scores a frontier in one scorer call. */
async function scoreFrontier(state: WalkState, frontier: number[]): Promise<{ rows: Uint32Array; scores: Float32Array }> {
  const rows = Uint32Array.from(frontier);
  const t0 = performance.now();
  const scores = await state.scorer.scoreRows(rows);
  state.msScoring += performance.now() - t0;
  checkScoreCount(scores, rows.length);
  state.docsScored += rows.length;
  return { rows, scores };
}

/** Appends the unvisited neighbours of `row` to `out`, marking them visited. */
function expand(state: WalkState, row: number, out: number[]): void {
  const { offsets, neighbors } = state.graph;
  const { visited } = state;
  for (let e = offsets[row], end = offsets[row + 1]; e < end; e++) {
    const nb = neighbors[e];
    if (nb >= visited.length) throw new RangeError(`graph: row ${row} has neighbour ${nb}, but the shard has ${visited.length} rows`);
    if (visited[nb] !== 0) continue;
    visited[nb] = 1;
    out.push(nb);
  }
}

function report(state: WalkState, iteration: number): void {
  state.onIteration?.({ iteration, topK: state.top.sorted(state.shard), scored: state.docsScored });
}

/** One step's outcome: the next frontier, and whether the variant's early-stop rule fired. */
interface StepResult {
  next: number[];
  earlyStop: boolean;
}
type Step = (rows: Uint32Array, scores: Float32Array) => StepResult | Promise<StepResult>;

/**
 * The loop every variant shares: stop on an empty frontier or at maxIter, score the whole frontier in
 * one call, let the variant choose what to expand, report, and stop early when the variant says so.
 */
async function walk(state: WalkState, first: number[], step: Step): Promise<{ iterations: number; stoppedBy: StoppedBy }> {
  let frontier = first;
  let iterations = 0;
  for (;;) {
    if (frontier.length === 0) return { iterations, stoppedBy: "empty" };
    if (iterations === state.opts.maxIter) return { iterations, stoppedBy: "max_iter" };
    state.signal?.throwIfAborted();
    const { rows, scores } = await scoreFrontier(state, frontier);
    iterations++;
    const { next, earlyStop } = await step(rows, scores);
    report(state, iterations);
    if (earlyStop) return { iterations, stoppedBy: "early_stop" };
    frontier = next;
  }
}

/** The published step: the frontier's best max(ncandidates, k) are offered to T; its best ncandidates are expanded. */
function publishedStep(state: WalkState): Step {
  const { opts, top, isDead } = state;
  return (rows, scores) => {
    const best = new TopK(Math.min(Math.max(opts.ncandidates, opts.k), rows.length));
    for (let i = 0; i < rows.length; i++) best.push(rows[i], scores[i]);
    let entered = 0;
    let live = rows.length;
    const next: number[] = [];
    if (isDead) {
      live = 0;
      for (let i = 0; i < rows.length; i++) {
        if (isDead(rows[i])) continue;
        live++;
        if (top.push(rows[i], scores[i])) entered++;
      }
    }
    best.sorted().forEach((hit, i) => {
      if (!isDead && top.push(hit.row, hit.score)) entered++;
      if (i < opts.ncandidates) expand(state, hit.row, next);
    });
    // A frontier of dead rows only (e.g. none matches a filter) says nothing about convergence: walk on.
    return { next, earlyStop: entered === 0 && live > 0 && opts.earlyStop };
  };
}

/** Best-first: expand the best ncandidates of every scored, not-yet-expanded row (like HNSW's ef). */
function bestFirstStep(state: WalkState): Step {
  const frontier = bestFirstFrontier(state);
  return (rows, scores) => {
    frontier.offer(rows, scores);
    return frontier.expand();
  };
}

/**
 * Best-first's state: `offer` takes a scored frontier, `expand` chooses the next one. The working
 * set bounds what is worth expanding; the pool holds every scored row not yet expanded.
 */
function bestFirstFrontier(state: WalkState): { offer(rows: Uint32Array, scores: Float32Array): void; expand(): StepResult } {
  const { opts, top, isDead } = state;
  const working = new TopK(Math.max(opts.ncandidates, opts.k));
  const pool = new MaxPool();
  return {
    offer(rows, scores) {
      for (let i = 0; i < rows.length; i++) {
        if (!isDead?.(rows[i])) top.push(rows[i], scores[i]);
        working.push(rows[i], scores[i]);
        if (!Number.isNaN(scores[i])) pool.push(rows[i], scores[i]);
      }
    },
    expand() {
      const next: number[] = [];
      let promising = 0;
      for (let expanded = 0; expanded < opts.ncandidates && pool.size > 0; expanded++) {
        // Rows that have since dropped out of the working set are not worth expanding (earlyStop).
        if (opts.earlyStop && working.full && pool.peekScore() < working.worstScore) break;
        promising++;
        expand(state, pool.pop(), next);
      }
      // With nothing promising left the pool still holds rows, else the frontier is empty (stops next step).
      return { next, earlyStop: promising === 0 && pool.size > 0 };
    },
  };
}

/**
 * Proxy-seeded best-first: the first frontier is offered but not expanded; its best hits ask
 * seedRows for rows near the answer, and those not yet scored are the second frontier. Every later
 * step is best-first's, over everything scored so far (the first frontier's rows wait in the pool).
 */
function proxyStep(state: WalkState, seedRows: NonNullable<GraphSearchOptions["seedRows"]>): Step {
  const frontier = bestFirstFrontier(state);
  let seeded = false;
  return async (rows, scores) => {
    frontier.offer(rows, scores);
    if (!seeded && state.opts.proxySeeds > 0) {
      seeded = true;
      state.signal?.throwIfAborted();
      const seeds = await seedRows(state.top.sorted(state.shard), state.opts.proxySeeds);
      const next: number[] = [];
      const { visited } = state;
      for (const row of seeds) {
        if (row >= visited.length) throw new RangeError(`seedRows returned row ${row}, but the shard has ${visited.length} rows`);
        if (visited[row] !== 0) continue;
        visited[row] = 1;
        next.push(row);
      }
      if (next.length > 0) return { next, earlyStop: false };
    }
    return frontier.expand();
  };
}

/** A growable max-heap of (row, score), best first with the lower row winning ties. */
class MaxPool {
  private rows = new Uint32Array(1024);
  private scores = new Float64Array(1024);
  size = 0;

  private above(i: number, j: number): boolean {
    const { scores, rows } = this;
    return scores[i] > scores[j] || (scores[i] === scores[j] && rows[i] < rows[j]);
  }

  private swap(i: number, j: number): void {
    const { scores, rows } = this;
    [rows[i], rows[j]] = [rows[j], rows[i]];
    [scores[i], scores[j]] = [scores[j], scores[i]];
  }

  push(row: number, score: number): void {
    if (this.size === this.rows.length) {
      const rows = new Uint32Array(this.size * 2);
      const scores = new Float64Array(this.size * 2);
      rows.set(this.rows);
      scores.set(this.scores);
      this.rows = rows;
      this.scores = scores;
    }
    let i = this.size++;
    this.rows[i] = row;
    this.scores[i] = score;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  peekScore(): number {
    return this.scores[0];
  }

  pop(): number {
    const best = this.rows[0];
    this.size--;
    this.rows[0] = this.rows[this.size];
    this.scores[0] = this.scores[this.size];
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= this.size) break;
      const right = left + 1;
      const child = right < this.size && this.above(right, left) ? right : left;
      if (!this.above(child, i)) break;
      this.swap(i, child);
      i = child;
    }
    return best;
  }
}
