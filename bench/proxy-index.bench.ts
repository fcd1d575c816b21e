/**
 * The per-shard proxy index (issue 14): what it adds to a shard's build, what it costs to open and
 * hold, and its search latency and recall against exact inner products, for the entry-set sizes
 * graph search asks for.
 *
 *   node bin/run-ts.mjs bench/proxy-index.bench.ts --n 100000 --dim 768 --queries 30 [--knn]
 *
 * The corpus is clustered (test/support/synthetic-corpus.ts) and stored as fp16, as builds store
 * it. Queries are of two kinds: random directions, and "regional" ones (a cluster's centre
 * direction plus noise), as a trained q-net's gradient prefers a region. Recall is of the exact
 * top `count` by inner product. --knn also times the shard's kNN graph (degree 100, the default),
 * so the proxy index's build time can be read as a share of the graph phase. Last, the reader's
 * default i8 copy of the vectors against an f16 one, for memory against recall.
 */
import { parseArgs } from "node:util";
import { decodeShard, encodeShard } from "../shared/index/format.ts";
import { float32ArrayToHalf, halfToFloat32Array } from "../shared/qnet/half.ts";
import { buildKnnGraph } from "../gpu-worker/src/index/build/knn-graph.ts";
import { buildProxyIndex } from "../gpu-worker/src/index/build/proxy-index.ts";
import { PROXY_VECTORS, prepareProxyIndex } from "../gpu-worker/src/index/proxy-index-reader.ts";
import { seededRandom } from "../gpu-worker/src/search/random.ts";
import { clusteredEmbeddings } from "../test/support/synthetic-corpus.ts";

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "100000" },
    dim: { type: "string", default: "768" },
    queries: { type: "string", default: "30" },
    counts: { type: "string", default: "64,128,256,512,1024" },
    clusters: { type: "string", default: "200" },
    knn: { type: "boolean", default: false },
  },
});
const n = Number(values.n);
const dim = Number(values.dim);
const queryCount = Number(values.queries);
const counts = values.counts!.split(",").map(Number);
const clusters = Number(values.clusters);

const ms = (t0: number) => performance.now() - t0;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

console.log(`corpus: ${n} × ${dim} clustered (${clusters} clusters), fp16; ${queryCount} queries of each kind`);
let t0 = performance.now();
const x = halfToFloat32Array(float32ArrayToHalf(clusteredEmbeddings({ n, dim, clusters, seed: 1, latentDim: 16 })));
console.log(`generated in ${(ms(t0) / 1000).toFixed(1)} s`);

if (values.knn) {
  t0 = performance.now();
  const graph = await buildKnnGraph(x, dim, { degree: 100, hnsw: { quantization: "f16" } });
  console.log(`kNN graph (degree 100, ${graph.builder}): ${(ms(t0) / 1000).toFixed(1)} s`);
}

t0 = performance.now();
const section = (await buildProxyIndex(x, dim))!;
const buildMs = ms(t0);
console.log(`proxy index build: ${(buildMs / 1000).toFixed(1)} s; section ${mb(section.length)} (${(section.length / n).toFixed(0)} B/row; embeddings ${(2 * dim)} B/row)`);

const shardFile = encodeShard({
  ids: Array.from({ length: n }, (_, i) => `d${i}`),
  fields: Array.from({ length: n }, () => ({})),
  embeddings: x,
  dim,
  dtype: "float16",
  graph: { offsets: new Uint32Array(n + 1), neighbors: new Uint32Array(0), degree: 0 },
  proxyIndex: section,
});
t0 = performance.now();
const shard = decodeShard(shardFile);
console.log(`decodeShard (with the section's node-by-node check): ${ms(t0).toFixed(0)} ms; shard ${mb(shardFile.length)}`);
t0 = performance.now();
const proxy = await prepareProxyIndex(shard);
console.log(`open (prepareProxyIndex: temp file, usearch load): ${ms(t0).toFixed(0)} ms; memory counted ${mb(proxy.bytes)}`);
const exact = await prepareProxyIndex(decodeShard(encodeShard({ ...decodeInput(), proxyIndex: undefined })));

function decodeInput() {
  return {
    ids: Array.from({ length: n }, (_, i) => `d${i}`),
    fields: Array.from({ length: n }, () => ({})),
    embeddings: x,
    dim,
    dtype: "float16" as const,
    graph: { offsets: new Uint32Array(n + 1), neighbors: new Uint32Array(0), degree: 0 },
  };
}

const rand = seededRandom(7);
const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
const randomQueries = Array.from({ length: queryCount }, () => Float32Array.from({ length: dim }, gauss));
// Regional: the direction of one row's neighbourhood (a row, as a stand-in for its cluster), plus noise.
const regionalQueries = Array.from({ length: queryCount }, () => {
  const row = Math.floor(rand() * n);
  return Float32Array.from({ length: dim }, (_, k) => x[row * dim + k]! + 0.3 * gauss());
});

for (const [kind, queries] of [["random", randomQueries], ["regional", regionalQueries]] as const) {
  const maxCount = Math.max(...counts);
  const truths: Uint32Array[] = [];
  const exactMs: number[] = [];
  for (const q of queries) {
    const t = performance.now();
    truths.push(exact.search(q, maxCount));
    exactMs.push(ms(t));
  }
  console.log(`\n${kind} queries; brute force over ${n} rows (the reader's path without a section): p50 ${pct(exactMs, 50).toFixed(1)} ms`);
  console.log("count  p50 ms  p90 ms  recall");
  for (const count of counts) {
    const times: number[] = [];
    let recall = 0;
    queries.forEach((q, i) => {
      const t = performance.now();
      const rows = proxy.search(q, count);
      times.push(ms(t));
      const truth = new Set(truths[i]!.subarray(0, count));
      let hit = 0;
      for (const r of rows) if (truth.has(r)) hit++;
      recall += hit / count;
    });
    console.log(`${String(count).padStart(5)}  ${pct(times, 50).toFixed(2).padStart(6)}  ${pct(times, 90).toFixed(2).padStart(6)}  ${(recall / queries.length).toFixed(3)}`);
  }
}

// f16 against the default i8: the same section, usearch's copy of the vectors held as f16.
{
  const f16 = await prepareProxyIndex(decodeShard(shardFile), { vectors: "f16" });
  console.log(`\nf16 vectors instead of i8 (PROXY_VECTORS = "${PROXY_VECTORS}"): memory counted ${mb(f16.bytes)} against ${mb(proxy.bytes)}`);
  console.log("kind      count  p50 ms(f16)  p50 ms(i8)  recall(f16)  recall(i8)");
  for (const [kind, queries] of [["random", randomQueries], ["regional", regionalQueries]] as const) {
    for (const count of [64, 256, 1024]) {
      const timesF16: number[] = [];
      const timesI8: number[] = [];
      let recallF16 = 0;
      let recallI8 = 0;
      for (const q of queries) {
        const truth = new Set(exact.search(q, count));
        let t = performance.now();
        const a = f16.search(q, count);
        timesF16.push(ms(t));
        t = performance.now();
        const b = proxy.search(q, count);
        timesI8.push(ms(t));
        recallF16 += [...a].filter((r) => truth.has(r)).length / count;
        recallI8 += [...b].filter((r) => truth.has(r)).length / count;
      }
      console.log(
        `${kind.padEnd(9)} ${String(count).padStart(5)}  ${pct(timesF16, 50).toFixed(2).padStart(11)}  ${pct(timesI8, 50).toFixed(2).padStart(10)}  ${(recallF16 / queries.length).toFixed(3).padStart(11)}  ${(recallI8 / queries.length).toFixed(3).padStart(10)}`,
      );
    }
  }
  f16.close();
}
proxy.close();
