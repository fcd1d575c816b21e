/**
 * Filtered search against selectivity, on the synthetic corpus of bench/graph-search.bench.ts
 * (clustered 768-d embeddings, fp16, the index's default graph: kNN degree 100 with a fifth reverse
 * links, 256 k-means entry rows) with random field values, scored by the production ONNX q-net
 * scorer graph on CPU. For each selectivity (a condition on a uniformly random number field, so
 * matches are spread over the clusters) and each plan, forced through the worker's own segment
 * search (gpu-worker/src/filter/filtered-search.ts):
 *   - filtered-exhaustive: scores exactly the matching rows; it IS exact filtered search (the truth);
 *   - filtered-walk: the graph walk at the default search parameters, non-matching rows walked
 *     through but never returned, entered from matching rows;
 *   - filtered-walk with a small entry set (the 256 medoids' worth), to show what starves a walk.
 * Reports recall@10 against exact, docs scored and latency p50/p95, the plan the planner picks,
 * the measured crossover (where the walk gets cheaper than scoring every match), and the filter
 * compile time at 1M rows (columns with random values, the same filters).
 *
 *   node bin/run-ts.mjs bench/filters.bench.ts [--n 100000] [--queries 10] [--layers 6]
 *     [--selectivities 1,0.5,0.2,0.1,0.05,0.01,0.001] [--compile-rows 1000000] [--threads <cores>]
 */
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { BUILD_DEFAULTS, SEARCH_DEFAULTS, VARIANT_DEFAULTS } from "../shared/api/worker-api.ts";
/** The filtered walk keeps the published step and parameters (filter/filtered-search.ts). */
const PUBLISHED = VARIANT_DEFAULTS.published;
import { parseFilter } from "../shared/filter/filter.ts";
import type { FieldSchema } from "../shared/filter/schema.ts";
import { buildFilterColumns, type FilterColumns } from "../shared/index/filter-columns.ts";
import { float32ArrayToHalf, halfToFloat32Array } from "../shared/qnet/half.ts";
import type { QNet, QNetArchitecture } from "../shared/qnet/types.ts";
import { compileFilter } from "../gpu-worker/src/filter/compile.ts";
import { searchFilteredSegment } from "../gpu-worker/src/filter/filtered-search.ts";
import { choosePlan, FILTER_PLAN_DEFAULTS, type FilterPlan } from "../gpu-worker/src/filter/plan.ts";
import { countRows, type RowBitmap } from "../gpu-worker/src/filter/row-bitmap.ts";
import { kmeansEntryRows } from "../gpu-worker/src/index/build/entry-points.ts";
import { buildKnnGraph, reachableFraction } from "../gpu-worker/src/index/build/knn-graph.ts";
import { encodeModel } from "../gpu-worker/src/model/onnx/graph-builder.ts";
import { buildQNetScorerGraph } from "../gpu-worker/src/model/onnx/qnet-scorer.ts";
import { GRAPH_IO } from "../gpu-worker/src/model/types.ts";
import { seededRandom } from "../gpu-worker/src/search/random.ts";
import type { RowScorer } from "../gpu-worker/src/search/row-scorer.ts";
import { clusteredEmbeddings, recall } from "../test/support/synthetic-corpus.ts";
import { randomQNet } from "../test/support/random-qnet.ts";
import { percentile } from "./stats.ts";

const { values: args } = parseArgs({
  options: {
    n: { type: "string", default: "100000" },
    queries: { type: "string", default: "10" },
    layers: { type: "string", default: "6" },
    degree: { type: "string", default: "100" },
    dim: { type: "string", default: "768" },
    selectivities: { type: "string", default: "1,0.5,0.2,0.1,0.05,0.01,0.001" },
    "compile-rows": { type: "string", default: "1000000" },
    "small-entry": { type: "string", default: String(BUILD_DEFAULTS.entryRows) },
    threads: { type: "string", default: String(availableParallelism()) },
  },
});
const N = Number(args.n);
const QUERIES = Number(args.queries);
const DIM = Number(args.dim);
const LAYERS = Number(args.layers);
const SMALL_ENTRY = Number(args["small-entry"]);
const SELECTIVITIES = args.selectivities.split(",").map(Number);
const K = 10;
// The corpus of bench/graph-search.bench.ts.
const CLUSTERS = 64;
const LATENT_DIM = 4;

const schema: FieldSchema = { u: "number", section: "string", tags: "string[]", free: "boolean" };

/** Random field values: `u` uniform in [0, 1) (the selectivity knob), the others as a real index might hold. */
function randomFields(rows: number, seed: number): Record<string, unknown>[] {
  const rand = seededRandom(seed);
  const pick = (n: number) => Math.floor(rand() * n);
  return Array.from({ length: rows }, () => {
    const doc: Record<string, unknown> = { u: rand(), section: `section-${pick(20)}`, tags: Array.from({ length: pick(4) }, () => `tag-${pick(200)}`) };
    if (rand() >= 0.1) doc.free = rand() < 0.3;
    return doc;
  });
}

/** The filter with selectivity p: u < p (and, below 100%, one more condition every row passes, so the compile is not trivial). */
function filterFor(p: number) {
  return parseFilter(p >= 1 ? { field: "u", op: "gte", value: 0 } : { and: [{ field: "u", op: "lt", value: p }, { field: "section", op: "ne", value: "none" }] }, schema);
}

function architecture(layers: number): QNetArchitecture {
  return { dims: [...Array<number>(layers + 1).fill(DIM), 1], activation: "relu", doLayerNorm: true, doResidual: true, doResidualOnLast: false, layerNormBeforeResidual: true };
}

/** A RowScorer over fp16 embeddings with the production scorer graph (as bench/graph-search.bench.ts). */
function onnxRowScorer(session: ort.InferenceSession, qnet: QNet, half: Uint16Array): RowScorer {
  const weightFeeds: Record<string, ort.Tensor> = {};
  qnet.weights.forEach((w, i) => (weightFeeds[GRAPH_IO.weight(i)] = new ort.Tensor("float32", w, [qnet.dims[i]!, qnet.dims[i + 1]!])));
  qnet.biases.forEach((b, j) => (weightFeeds[GRAPH_IO.bias(j)] = new ort.Tensor("float32", b, [b.length])));
  return {
    async scoreRows(rows) {
      const gathered = new Uint16Array(rows.length * DIM);
      rows.forEach((row, i) => gathered.set(half.subarray(row * DIM, (row + 1) * DIM), i * DIM));
      const out = await session.run({ ...weightFeeds, [GRAPH_IO.embeddings]: new ort.Tensor("float16", gathered, [rows.length, DIM]) });
      return out[GRAPH_IO.scores]!.data as Float32Array;
    },
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const pct = (p: number) => `${+(p * 100).toPrecision(3)}%`;

interface Cell {
  recall: number[];
  docs: number[];
  ms: number[];
}
const cell = (): Cell => ({ recall: [], docs: [], ms: [] });

console.log(`== N=${N}, ${DIM}-d fp16, ${CLUSTERS} clusters (latent dim ${LATENT_DIM}), q-net ${LAYERS}×${DIM}→1 relu, ${QUERIES} queries, threads=${args.threads}`);
console.log(
  `search defaults: entryPoints ${PUBLISHED.entryPoints}, ncandidates ${PUBLISHED.ncandidates}, maxIter ${PUBLISHED.maxIter}, earlyStop ${SEARCH_DEFAULTS.earlyStop}; ` +
    `planner: exhaustive when matches <= max(${FILTER_PLAN_DEFAULTS.exhaustiveMaxRows}, ${FILTER_PLAN_DEFAULTS.exhaustiveMaxFraction} × rows, entryPoints)`,
);
let t0 = performance.now();
const half = float32ArrayToHalf(clusteredEmbeddings({ n: N, dim: DIM, clusters: CLUSTERS, seed: 1, latentDim: LATENT_DIM }));
const embeddings = halfToFloat32Array(half);
console.log(`corpus: ${seconds(performance.now() - t0)}`);
t0 = performance.now();
const graph = await buildKnnGraph(embeddings, DIM, { degree: Number(args.degree), reverseShare: BUILD_DEFAULTS.reverseShare, hnsw: { threads: Number(args.threads), quantization: "f16" } });
console.log(`graph (degree ${graph.degree}, ${graph.reverseSlots} reverse slots): ${seconds(performance.now() - t0)}; reachable from 10 entries: ${(100 * reachableFraction(graph, 10, 1)).toFixed(1)}%`);
t0 = performance.now();
const entryRows = kmeansEntryRows(embeddings, DIM, { count: BUILD_DEFAULTS.entryRows });
console.log(`k-means entry rows: ${entryRows.length} in ${seconds(performance.now() - t0)}`);
const columns: FilterColumns = buildFilterColumns(schema, randomFields(N, 2));
const matchingBy = new Map<number, RowBitmap>(SELECTIVITIES.map((p) => [p, compileFilter(filterFor(p), columns)]));

const session = await ort.InferenceSession.create(encodeModel(buildQNetScorerGraph(architecture(LAYERS), { embeddingType: "float16" })), { intraOpNumThreads: Number(args.threads) });
const PLANS = ["filtered-exhaustive", "filtered-walk", `filtered-walk, entryPoints ${SMALL_ENTRY}`] as const;
const results = new Map<number, Record<(typeof PLANS)[number], Cell>>(SELECTIVITIES.map((p) => [p, { [PLANS[0]]: cell(), [PLANS[1]]: cell(), [PLANS[2]]: cell() } as Record<(typeof PLANS)[number], Cell>]));
const rand = seededRandom(7);
const defaults = { k: K, mode: "approx" as const, variant: "published" as const, entryPoints: PUBLISHED.entryPoints, ncandidates: PUBLISHED.ncandidates, maxIter: PUBLISHED.maxIter, earlyStop: SEARCH_DEFAULTS.earlyStop };
for (let q = 0; q < QUERIES; q++) {
  const scorer = onnxRowScorer(session, randomQNet(rand, architecture(LAYERS)), half);
  if (q === 0) await scorer.scoreRows(Uint32Array.of(0, 1, 2, 3)); // warm-up
  for (const p of SELECTIVITIES) {
    const matching = matchingBy.get(p)!;
    const row = results.get(p)!;
    const run = async (plan: FilterPlan, entryPoints: number) => {
      const t = performance.now();
      const r = await searchFilteredSegment(scorer, graph, matching, { params: { ...defaults, entryPoints }, seed: q, entryRows, forcePlan: plan });
      return { ...r, ms: performance.now() - t };
    };
    const truth = await run("filtered-exhaustive", defaults.entryPoints);
    row[PLANS[0]].recall.push(1);
    row[PLANS[0]].docs.push(truth.docsScored);
    row[PLANS[0]].ms.push(truth.ms);
    for (const [name, entryPoints] of [[PLANS[1], defaults.entryPoints], [PLANS[2], SMALL_ENTRY]] as const) {
      const walk = await run("filtered-walk", entryPoints);
      row[name].recall.push(truth.hits.length === 0 ? 1 : recall(walk.hits, truth.hits));
      row[name].docs.push(walk.docsScored);
      row[name].ms.push(walk.ms);
    }
  }
  process.stderr.write(`  query ${q + 1}/${QUERIES}\r`);
}
await session.release();

console.log("\nselectivity | matches | planner picks        | plan                           | recall@10 | docs scored | p50 ms | p95 ms");
for (const p of SELECTIVITIES) {
  const matches = countRows(matchingBy.get(p)!);
  const picked = choosePlan(matches, N, { entryPoints: defaults.entryPoints });
  const row = results.get(p)!;
  for (const name of PLANS) {
    const c = row[name];
    console.log(
      [
        pct(p).padStart(11),
        String(matches).padStart(7),
        (name === PLANS[0] ? picked : "").padEnd(20),
        name.padEnd(30),
        mean(c.recall).toFixed(3).padStart(9),
        mean(c.docs).toFixed(0).padStart(11),
        percentile(c.ms, 50).toFixed(0).padStart(6),
        percentile(c.ms, 95).toFixed(0).padStart(6),
      ].join(" | "),
    );
  }
}
// The crossover lies between the largest match count where scoring every match was at least as
// fast as the walk and the smallest count above it where the walk was faster.
const rowsWalkFaster = SELECTIVITIES.map((p) => ({ matches: countRows(matchingBy.get(p)!), walk: percentile(results.get(p)![PLANS[1]].ms, 50) < percentile(results.get(p)![PLANS[0]].ms, 50) }));
const exhaustiveMax = Math.max(0, ...rowsWalkFaster.filter((r) => !r.walk).map((r) => r.matches));
const walkMin = Math.min(...rowsWalkFaster.filter((r) => r.walk && r.matches > exhaustiveMax).map((r) => r.matches));
console.log(
  `\nmeasured crossover (p50): scoring every match is at least as fast up to ${exhaustiveMax} matches (${pct(exhaustiveMax / N)} of ${N})` +
    (Number.isFinite(walkMin) ? `; the walk is faster from ${walkMin} matches (${pct(walkMin / N)})` : "; the walk was never faster"),
);

// ── Compile time at 1M rows ─────────────────────────────────────────────────────────────────
const COMPILE_ROWS = Number(args["compile-rows"]);
if (COMPILE_ROWS > 0) {
  t0 = performance.now();
  const big = buildFilterColumns(schema, randomFields(COMPILE_ROWS, 3));
  console.log(`\nfilter compile at ${COMPILE_ROWS} rows (columns built in ${seconds(performance.now() - t0)}), p50 of 9 runs:`);
  for (const p of SELECTIVITIES) {
    const filter = filterFor(p);
    const times: number[] = [];
    let matches = 0;
    for (let r = 0; r < 9; r++) {
      const t = performance.now();
      matches = countRows(compileFilter(filter, big));
      times.push(performance.now() - t);
    }
    console.log(`  selectivity ${pct(p).padStart(5)}: ${percentile(times, 50).toFixed(1).padStart(6)} ms (${matches} matches, bitmap + count)`);
  }
}
