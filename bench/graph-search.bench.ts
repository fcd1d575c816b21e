/**
 * Graph search against exhaustive search on synthetic clustered 768-d embeddings (fp16, as the index
 * stores them), scored by the ONNX q-net scorer graph on onnxruntime-node CPU: recall@10 against
 * exhaustive, documents scored (% of the corpus) and latency p50/p95 for the published walk (its
 * entry-set sweep), best-first and the proxy-seeded walk (bench/graph-search-curves.ts), on the
 * graph the index builds by default (the paper's degree, a fifth of it reverse links), and an SVG
 * of recall against documents scored (--svg).
 *
 * Two kinds of queries (--qnets):
 * - "region" (the realistic case): q-nets that prefer a region of the space, as trained ones do:
 *   random q-nets whose last hidden layer has a block of units reading the direction from the
 *   corpus mean to a random document (test/support/random-qnet.ts regionQNet).
 * - "random": the old generator, random q-nets (randomQNet), which prefer no region; kept as the
 *   second case.
 *
 *   node bin/run-ts.mjs bench/graph-search.bench.ts [--n 10000,100000] [--queries 20] [--layers 6]
 *     [--qnets region,random] [--region-weight 0.1] [--degree 100] [--entry-rows 256] [--threads <cores>] [--cache <dir>] [--svg <file>]
 *
 * 1M documents (`npm run bench -- graph-search-1m`) uses 2-hidden-layer q-nets unless --layers is
 * given: exhaustive search at depth 6 costs ~7 TFLOP per query there. Its corpus (1.5 GB), kNN graph,
 * inner-product index and exhaustive answers take most of an hour on 2 cores, so --cache keeps them
 * on disk between runs (each keyed by everything that determines it); the report prints how long
 * each took to make.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { BUILD_DEFAULTS } from "../shared/api/worker-api.ts";
import { float32ArrayToHalf, halfToFloat32Array } from "../shared/qnet/half.ts";
import type { QNet, QNetArchitecture } from "../shared/qnet/types.ts";
import { addReverseLinks, buildKnnGraph, type KnnGraph, reachableFraction } from "../gpu-worker/src/index/build/knn-graph.ts";
import { encodeModel } from "../gpu-worker/src/model/onnx/graph-builder.ts";
import { buildQNetScorerGraph } from "../gpu-worker/src/model/onnx/qnet-scorer.ts";
import { GRAPH_IO } from "../gpu-worker/src/model/types.ts";
import { kmeansEntryRows } from "../gpu-worker/src/index/build/entry-points.ts";
import { exhaustiveSearch } from "../gpu-worker/src/search/exhaustive.ts";
import { seededRandom } from "../gpu-worker/src/search/random.ts";
import type { RowScorer } from "../gpu-worker/src/search/row-scorer.ts";
import { clusteredEmbeddings, recall } from "../test/support/synthetic-corpus.ts";
import type { RowHit } from "../gpu-worker/src/search/topk.ts";
import { randomQNet, regionQNet } from "../test/support/random-qnet.ts";
import { formatTable, measureCurves, type Panel, type QueryCase, standardConfigs, writeSvg } from "./graph-search-curves.ts";
import { buildProxyIndex, type ProxyIndexHandle } from "./proxy-index-harness.ts";

const { values: args } = parseArgs({
  options: {
    n: { type: "string", default: "10000,100000" },
    queries: { type: "string", default: "20" },
    layers: { type: "string" },
    degree: { type: "string", default: "100" },
    "entry-rows": { type: "string", default: "256" },
    threads: { type: "string", default: String(availableParallelism()) },
    dim: { type: "string", default: "768" },
    cache: { type: "string" },
    qnets: { type: "string", default: "region,random" },
    /** regionQNet's outputWeight: how strongly the q-nets prefer their region (lower: the random rest weighs more). */
    "region-weight": { type: "string", default: "0.1" },
    svg: { type: "string" },
  },
});
const DIM = Number(args.dim);
const DEGREE = Number(args.degree);
const K = 10;
const CLUSTERS = 64;
const LATENT_DIM = 4;

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

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------------------------
// The on-disk cache: one file per artefact, written to a temporary name and renamed, with the
// time it took to make stored beside it so a cached run still reports it.
// ---------------------------------------------------------------------------------------------

interface Made<T> {
  value: T;
  ms: number;
  cached: boolean;
}

async function cachedBytes<T>(
  name: string,
  make: () => Promise<T>,
  toBytes: (value: T) => Uint8Array,
  fromBytes: (bytes: Buffer) => T,
): Promise<Made<T>> {
  const path = args.cache ? join(args.cache, name) : undefined;
  if (path) {
    try {
      const [bytes, meta] = await Promise.all([readFile(path), readFile(`${path}.json`, "utf8")]);
      return { value: fromBytes(bytes), ms: (JSON.parse(meta) as { ms: number }).ms, cached: true };
    } catch {
      // not cached yet
    }
  }
  const t0 = performance.now();
  const value = await make();
  const ms = performance.now() - t0;
  if (path) {
    await mkdir(args.cache!, { recursive: true });
    await writeFile(`${path}.tmp`, toBytes(value));
    await rename(`${path}.tmp`, path);
    await writeFile(`${path}.json`, JSON.stringify({ ms }));
  }
  return { value, ms, cached: false };
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
/** A typed-array copy of a Buffer (whose offset need not be aligned). */
const copyAs = <A>(bytes: Buffer, Ctor: { new (b: ArrayBuffer): A }) =>
  new Ctor(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);

function corpus(n: number): Promise<Made<Uint16Array>> {
  // fp16-rounded: the graph is built from the same values the scorer sees.
  return cachedBytes(
    `corpus-n${n}-d${DIM}-c${CLUSTERS}-l${LATENT_DIM}-s1.f16`,
    async () => float32ArrayToHalf(clusteredEmbeddings({ n, dim: DIM, clusters: CLUSTERS, seed: 1, latentDim: LATENT_DIM })),
    bytesOf,
    (b) => copyAs(b, Uint16Array),
  );
}

/** The pure kNN graph (the expensive part, cached); reverse links are added from it in seconds. */
function knnGraph(n: number, embeddings: Float32Array): Promise<Made<KnnGraph>> {
  return cachedBytes(
    `graph-n${n}-d${DIM}-c${CLUSTERS}-l${LATENT_DIM}-s1-deg${DEGREE}.u32`,
    () => buildKnnGraph(embeddings, DIM, { degree: DEGREE, reverseShare: 0, hnsw: { threads: Number(args.threads), quantization: "f16" } }),
    (g) => {
      const out = new Uint32Array(2 + g.offsets.length + g.neighbors.length);
      out.set([g.offsets.length, g.degree]);
      out.set(g.offsets, 2);
      out.set(g.neighbors, 2 + g.offsets.length);
      return bytesOf(out);
    },
    (b) => {
      const all = copyAs(b, Uint32Array);
      const offsets = all.subarray(2, 2 + all[0]!);
      return { offsets, neighbors: all.subarray(2 + all[0]!), degree: all[1]!, builder: "usearch-hnsw", reverseSlots: 0 };
    },
  );
}

function exhaustiveTruth(n: number, layers: number, kind: string, query: number, scorer: RowScorer): Promise<Made<RowHit[]>> {
  // The old cache names (before region q-nets) stay valid for the random kind.
  const kindPart = kind === "random" ? "" : `-${kind}${args["region-weight"]}`;
  return cachedBytes(
    `truth-n${n}-d${DIM}-c${CLUSTERS}-l${LATENT_DIM}-s1-layers${layers}${kindPart}-q${query}.json`,
    async () => (await exhaustiveSearch(scorer, n, { k: K })).hits,
    (hits) => Buffer.from(JSON.stringify(hits)),
    (b) => JSON.parse(b.toString("utf8")) as RowHit[],
  );
}

// ---------------------------------------------------------------------------------------------

type QNetKind = "region" | "random";

async function benchCorpus(n: number, queries: number, layers: number, kinds: readonly QNetKind[], panels: Panel[]): Promise<void> {
  const arch = architecture(layers);
  console.log(
    `\n== N=${n}, ${DIM}-d fp16, ${CLUSTERS} clusters (latent dim ${LATENT_DIM}), kNN degree ${DEGREE}, ` +
      `q-net ${layers}×${DIM}→1 relu, ${queries} queries per kind, threads=${args.threads}`,
  );
  const made = (what: string, m: Made<unknown>) => `${what}: ${seconds(m.ms)}${m.cached ? " (cached)" : ""}`;
  const half = await corpus(n);
  console.log(made("corpus", half));
  const embeddings = halfToFloat32Array(half.value);
  const graph = await knnGraph(n, embeddings);
  const reachable = (g: KnnGraph) => `reachable from 10 entries: ${(100 * reachableFraction(g, 10, 1)).toFixed(1)}%`;
  console.log(`${made(`kNN graph (usearch HNSW, f16, degree ${graph.value.degree})`, graph)}; ${reachable(graph.value)}`);
  let t0 = performance.now();
  const linked = await addReverseLinks(graph.value, BUILD_DEFAULTS.reverseShare);
  console.log(`+ reverse links (${linked.reverseSlots} of ${linked.degree} slots): ${seconds(performance.now() - t0)}; ${reachable(linked)}`);
  t0 = performance.now();
  // The fit index builds use (the defaults), so the walks below start where the worker's do.
  const entryRows = kmeansEntryRows(embeddings, DIM, { count: Number(args["entry-rows"]) });
  console.log(`k-means entry rows: ${entryRows.length} in ${seconds(performance.now() - t0)}`);
  const proxy: ProxyIndexHandle = await buildProxyIndex(embeddings, DIM, {
    half: half.value,
    cachePath: args.cache ? join(args.cache, `proxy-n${n}-d${DIM}-c${CLUSTERS}-l${LATENT_DIM}-s1`) : undefined,
  });
  console.log(`inner-product index (${proxy.description}): ${seconds(proxy.buildMs)}${proxy.cached ? " (cached)" : ""}`);
  const mean = new Float32Array(DIM);
  for (let r = 0; r < n; r++) for (let k = 0; k < DIM; k++) mean[k]! += embeddings[r * DIM + k]! / n;
  const row = (r: number) => embeddings.subarray(r * DIM, (r + 1) * DIM);

  const session = await ort.InferenceSession.create(encodeModel(buildQNetScorerGraph(arch, { embeddingType: "float16" })), {
    intraOpNumThreads: Number(args.threads),
  });
  for (const kind of kinds) {
    const rand = seededRandom(kind === "random" ? 7 : 8);
    let truthMs = 0;
    let truthCached = 0;
    let inTargetCluster = 0;
    async function* cases(): AsyncGenerator<QueryCase> {
      for (let q = 0; q < queries; q++) {
        // The random kind draws exactly what it always did, so its cached answers stay valid.
        const target = kind === "region" ? Math.floor(rand() * n) : 0;
        const qnet = kind === "random" ? randomQNet(rand, arch) : regionQNet(rand, arch, { target: row(target), mean, outputWeight: Number(args["region-weight"]) });
        const scorer = onnxRowScorer(session, qnet, half.value, DIM);
        if (q === 0) await scorer.scoreRows(Uint32Array.of(0, 1, 2, 3)); // warm-up
        const truth = await exhaustiveTruth(n, layers, kind, q, scorer);
        truthMs += truth.ms;
        truthCached += truth.cached ? 1 : 0;
        // How local the answer is: the share of the top-10 among the target's 1,000 nearest rows by inner product along its direction.
        if (kind === "region") {
          const near = new Set(proxy.index.search(direction(row(target), mean), 1000));
          inTargetCluster += truth.value.filter((h) => near.has(h.row)).length / truth.value.length;
        }
        yield { qnet, scorer, truth: truth.value, exhaustiveMs: truth.ms };
      }
    }
    const points = await measureCurves({
      n,
      k: K,
      graph: linked,
      row,
      mean,
      ipIndex: proxy.index,
      entryRows,
      configs: standardConfigs(entryRows),
      queries: cases(),
      onQuery: (done) => process.stderr.write(`  ${kind} query ${done}/${queries}\r`),
    });
    console.log(
      `\n-- q-nets: ${kind}; exhaustive answers: ${seconds(truthMs)} in all${truthCached > 0 ? ` (${truthCached} of ${queries} cached)` : ""}; ` +
        (kind === "region" ? `top-10 within the 1,000 rows furthest along the target direction: ${((100 * inTargetCluster) / queries).toFixed(0)}%` : ""),
    );
    console.log(formatTable(points, n));
    panels.push({ title: `N=${n.toLocaleString("en")}, ${layers}-layer q-nets, ${kind}`, points });
  }
  await session.release();
  proxy.close();
}

/** The unit direction from the mean to a row: what a region q-net prefers. */
function direction(target: Float32Array, mean: Float32Array): Float32Array {
  const d = new Float32Array(target.length);
  let norm = 0;
  for (let k = 0; k < d.length; k++) norm += (d[k] = target[k]! - mean[k]!) ** 2;
  for (let k = 0; k < d.length; k++) d[k]! /= Math.sqrt(norm) || 1;
  return d;
}

const panels: Panel[] = [];
const kinds = args.qnets.split(",") as QNetKind[];
for (const kind of kinds) if (kind !== "region" && kind !== "random") throw new Error(`--qnets takes region and/or random, got ${kind}`);
for (const n of args.n.split(",").map(Number)) {
  const layers = args.layers !== undefined ? Number(args.layers) : n >= 1_000_000 ? 2 : 6;
  await benchCorpus(n, Number(args.queries), layers, kinds, panels);
}
if (args.svg) {
  await writeSvg(args.svg, panels, `bench/graph-search.bench.ts ${process.argv.slice(2).join(" ")} — ${new Date().toISOString().slice(0, 10)}, onnxruntime-node CPU`);
  console.log(`\nSVG: ${args.svg}`);
}
