/**
 * Graph search vs exhaustive search on synthetic clustered 768-d embeddings (fp16, as the index stores
 * them), scored by the ONNX q-net scorer graph on onnxruntime-node CPU: recall@10 against exhaustive,
 * documents scored (% of the corpus) and latency p50/p95, for the published algorithm and the
 * improvements (k-means entry rows, best-first expansion).
 *
 *   node --import tsx bench/graph-search.bench.ts [--n 10000,100000] [--queries 10] [--layers 6]
 *     [--entry-rows 256] [--threads <cores>]
 *
 * 1M documents is opt-in (--n 1000000) and uses 2-hidden-layer q-nets unless --layers is given:
 * exhaustive search at depth 6 costs ~7 TFLOP per query there.
 */
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { float32ArrayToHalf, halfToFloat32Array } from "../shared/qnet/half.ts";
import type { QNet, QNetArchitecture } from "../shared/qnet/types.ts";
import { buildKnnGraph, reachableFraction } from "../gpu-worker/src/index/knn-graph.ts";
import { encodeModel } from "../gpu-worker/src/model/onnx/graph-builder.ts";
import { buildQNetScorerGraph } from "../gpu-worker/src/model/onnx/qnet-scorer.ts";
import { GRAPH_IO } from "../gpu-worker/src/model/types.ts";
import { kmeansEntryRows } from "../gpu-worker/src/search/entry-points.ts";
import { exhaustiveSearch } from "../gpu-worker/src/search/exhaustive.ts";
import { type GraphSearchOptions, graphSearch } from "../gpu-worker/src/search/graph-search.ts";
import { seededRandom } from "../gpu-worker/src/search/random.ts";
import type { RowScorer } from "../gpu-worker/src/search/row-scorer.ts";
import { clusteredEmbeddings, recall } from "../gpu-worker/src/search/synthetic-corpus.ts";
import { randomQNet } from "../test/support/random-qnet.ts";

const { values: args } = parseArgs({
  options: {
    n: { type: "string", default: "10000,100000" },
    queries: { type: "string", default: "10" },
    layers: { type: "string" },
    "entry-rows": { type: "string", default: "256" },
    threads: { type: "string", default: String(availableParallelism()) },
    dim: { type: "string", default: "768" },
  },
});
const DIM = Number(args.dim);
const K = 10;

function architecture(layers: number): QNetArchitecture {
  return {
    dims: [...Array<number>(layers + 1).fill(DIM), 1],
    activation: "relu",
    doLayerNorm: true,
    doResidual: true,
    doResidualOnLast: false,
    layerNormBeforeResidual: true,
  };
}

/** A RowScorer over fp16 embeddings with the production scorer graph (float16 input). */
function onnxRowScorer(session: ort.InferenceSession, qnet: QNet, half: Uint16Array, dim: number): RowScorer {
  const weightFeeds: Record<string, ort.Tensor> = {};
  qnet.weights.forEach((w, i) => (weightFeeds[GRAPH_IO.weight(i)] = new ort.Tensor("float32", w, [qnet.dims[i]!, qnet.dims[i + 1]!])));
  qnet.biases.forEach((b, j) => (weightFeeds[GRAPH_IO.bias(j)] = new ort.Tensor("float32", b, [b.length])));
  return {
    async scoreRows(rows) {
      const gathered = new Uint16Array(rows.length * dim);
      rows.forEach((row, i) => gathered.set(half.subarray(row * dim, (row + 1) * dim), i * dim));
      const out = await session.run({ ...weightFeeds, [GRAPH_IO.embeddings]: new ort.Tensor("float16", gathered, [rows.length, dim]) });
      return out[GRAPH_IO.scores]!.data as Float32Array;
    },
  };
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function benchCorpus(n: number, queries: number, layers: number): Promise<void> {
  const arch = architecture(layers);
  console.log(`\n== N=${n}, ${DIM}-d fp16, 64 clusters (latent dim 4), q-net ${layers}×${DIM}→1 relu, ${queries} queries, threads=${args.threads}`);
  let t0 = performance.now();
  // fp16-rounded: the graph is built from the same values the scorer sees.
  const half = float32ArrayToHalf(clusteredEmbeddings({ n, dim: DIM, clusters: 64, seed: 1, latentDim: 4 }));
  const embeddings = halfToFloat32Array(half);
  console.log(`corpus: ${(performance.now() - t0).toFixed(0)} ms`);
  t0 = performance.now();
  const graph = await buildKnnGraph(embeddings, DIM, { hnsw: { threads: Number(args.threads) } });
  console.log(
    `kNN graph (${graph.builder}, degree ${graph.degree}): ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
      `reachable from 10 entries: ${(100 * reachableFraction(graph, 10, 1)).toFixed(1)}%`,
  );
  t0 = performance.now();
  // A smaller k-means fit than the defaults keeps the 768-d fit to seconds; it only has to find the clusters.
  const entryRows = kmeansEntryRows(embeddings, DIM, { count: Number(args["entry-rows"]), samplePerCentroid: 8, iterations: 4 });
  console.log(`k-means entry rows: ${entryRows.length} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const session = await ort.InferenceSession.create(encodeModel(buildQNetScorerGraph(arch, { embeddingType: "float16" })), {
    intraOpNumThreads: Number(args.threads),
  });
  const configs: Record<string, GraphSearchOptions> = {
    "published (defaults)": {},
    "published + entry rows": { entryRows, entryPoints: entryRows.length },
    "best-first": { variant: "best-first" },
    "best-first + entry rows": { variant: "best-first", entryRows, entryPoints: entryRows.length },
  };
  const results: Record<string, { recall: number[]; docs: number[]; ms: number[]; iters: number[] }> = {};
  const record = (name: string, r: number, docs: number, ms: number, iters: number) => {
    const row = (results[name] ??= { recall: [], docs: [], ms: [], iters: [] });
    row.recall.push(r);
    row.docs.push(docs);
    row.ms.push(ms);
    row.iters.push(iters);
  };
  const rand = seededRandom(7);
  for (let q = 0; q < queries; q++) {
    const scorer = onnxRowScorer(session, randomQNet(rand, arch), half, DIM);
    if (q === 0) await scorer.scoreRows(Uint32Array.of(0, 1, 2, 3)); // warm-up
    const truth = await exhaustiveSearch(scorer, n, { k: K });
    record("exhaustive", 1, n, truth.stats.ms, 1);
    for (const [name, options] of Object.entries(configs)) {
      const found = await graphSearch(scorer, graph, { ...options, k: K, seed: q });
      record(name, recall(found.hits, truth.hits), found.stats.docsScored, found.stats.msTotal, found.stats.iterations);
    }
    process.stderr.write(`  query ${q + 1}/${queries}\r`);
  }
  await session.release();
  console.log("config                    | recall@10 | docs scored (% corpus) | iters | p50 ms | p95 ms");
  for (const [name, r] of Object.entries(results)) {
    console.log(
      [
        name.padEnd(25),
        mean(r.recall).toFixed(3).padStart(9),
        `${mean(r.docs).toFixed(0)} (${((100 * mean(r.docs)) / n).toFixed(1)}%)`.padStart(22),
        mean(r.iters).toFixed(1).padStart(5),
        percentile(r.ms, 50).toFixed(0).padStart(6),
        percentile(r.ms, 95).toFixed(0).padStart(6),
      ].join(" | "),
    );
  }
}

for (const n of args.n.split(",").map(Number)) {
  const layers = args.layers !== undefined ? Number(args.layers) : n >= 1_000_000 ? 2 : 6;
  await benchCorpus(n, Number(args.queries), layers);
}
