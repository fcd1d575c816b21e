/**
 * The graph walks with a TRAINED q-net: models/debian-mini on its real corpus (every Debian package,
 * 63k documents, indexed by the service's build pipeline at the build defaults) and its real queries
 * (the relevance bench's known-item synopses and hand-written tag queries). The same curves as the
 * synthetic bench (bench/graph-search-curves.ts): recall@10 against exhaustive search of the same
 * q-net, against documents scored, for the published walk, best-first and the proxy-seeded walk.
 *
 *   node bin/run-ts.mjs bench/graph-search-trained.bench.ts [--model models/debian-mini]
 *     [--known-items 200] [--cache bench/.cache/relevance] [--svg bench/reports/graph-search-trained.svg]
 *
 * The shard's embeddings, graph and k-means entry rows are the built index's own; q-nets come from the
 * model's query encoder; scoring is the model's ONNX scorer graph on onnxruntime-node CPU.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { halfToFloat32Array } from "../shared/qnet/half.ts";
import type { QNet } from "../shared/qnet/types.ts";
import { IndexRegistry } from "../gpu-worker/src/index/index-registry.ts";
import { ShardCache } from "../gpu-worker/src/index/shard-cache.ts";
import { graphPath } from "../gpu-worker/src/model/model-manifest.ts";
import { HypencoderRuntime } from "../gpu-worker/src/model/runtime/runtime.ts";
import { GRAPH_IO } from "../gpu-worker/src/model/types.ts";
import { exhaustiveSearch } from "../gpu-worker/src/search/exhaustive.ts";
import type { RowScorer } from "../gpu-worker/src/search/row-scorer.ts";
import { descriptionOnly, readDebianCorpus } from "../infra/dev/corpus/debian-corpus.ts";
import { formatTable, measureCurves, type QueryCase, standardConfigs, writeSvg } from "./graph-search-curves.ts";
import { buildProxyIndex } from "./proxy-index-harness.ts";
import { builtIndex, importedModel, knownItemQueries, tagQueries } from "./relevance/debian-collection.ts";

const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: "models/debian-mini" },
    "known-items": { type: "string", default: "200" },
    seed: { type: "string", default: "13" },
    cache: { type: "string", default: "bench/.cache/relevance" },
    svg: { type: "string" },
  },
});
const K = 10;
const QUERY_MAX_LENGTH = 64;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A RowScorer over the shard's stored embeddings with the model's own scorer graph. */
function sessionScorer(session: ort.InferenceSession, qnet: QNet, embeddings: Float32Array | Uint16Array, dim: number): RowScorer {
  const feeds: Record<string, ort.Tensor> = {};
  qnet.weights.forEach((w, i) => (feeds[GRAPH_IO.weight(i)] = new ort.Tensor("float32", w, [qnet.dims[i]!, qnet.dims[i + 1]!])));
  qnet.biases.forEach((b, j) => (feeds[GRAPH_IO.bias(j)] = new ort.Tensor("float32", b, [b.length])));
  const half = embeddings instanceof Uint16Array;
  return {
    async scoreRows(rows) {
      const gathered = half ? new Uint16Array(rows.length * dim) : new Float32Array(rows.length * dim);
      rows.forEach((row, i) => gathered.set(embeddings.subarray(row * dim, (row + 1) * dim), i * dim));
      const input = new ort.Tensor(half ? "float16" : "float32", gathered, [rows.length, dim]);
      const out = await session.run({ ...feeds, [GRAPH_IO.embeddings]: input });
      return out[GRAPH_IO.scores]!.data as Float32Array;
    },
  };
}

await mkdir(args.cache, { recursive: true });
const corpus = await readDebianCorpus();
const docs = corpus.map((d) => ({ id: d.id, text: descriptionOnly(d) }));
const queries = [...knownItemQueries(corpus, Number(args["known-items"]), Number(args.seed)), ...(await tagQueries(corpus))];
const model = await importedModel(args.model, args.cache);
const runtime = await HypencoderRuntime.load(model.dir);
const store = await builtIndex(runtime, docs, model.key, args.cache);
const registry = new IndexRegistry({ store, cache: new ShardCache({ dir: join(args.cache, `shard-cache-${model.key}`), budgetBytes: Number.MAX_SAFE_INTEGER, store }), modelId: runtime.manifest.modelId });
try {
  const index = await registry.at("");
  if (index.manifest.shards.length !== 1) throw new Error(`expected the collection in one shard, got ${index.manifest.shards.length}`);
  const shard = await index.shard(index.manifest.shards[0]!.id);
  const { dim, docCount: n } = shard;
  const embeddings = shard.embeddings instanceof Uint16Array ? halfToFloat32Array(shard.embeddings) : shard.embeddings;
  const mean = new Float32Array(dim);
  for (let r = 0; r < n; r++) for (let k = 0; k < dim; k++) mean[k]! += embeddings[r * dim + k]! / n;
  const proxy = await buildProxyIndex(embeddings, dim);
  const arch = runtime.manifest.qnet;
  console.log(
    `== ${args.model}: ${n} Debian packages (${dim}-d ${index.manifest.dtype}), kNN degree ${shard.degree}, ` +
      `q-net ${arch.dims.join("→")} ${arch.activation}, ${queries.length} queries (${args["known-items"]} known-item, ${queries.length - Number(args["known-items"])} tag)`,
  );
  console.log(`inner-product index (${proxy.description}): ${seconds(proxy.buildMs)}`);
  const t0 = performance.now();
  const qnets = await runtime.encodeQueries(
    queries.map((q) => q.text),
    { maxLength: QUERY_MAX_LENGTH },
  );
  console.log(`query encoding: ${seconds(performance.now() - t0)} for ${qnets.length} queries`);
  // The other proxy candidate: each query embedded as a document by the shared encoder.
  const queryVectors = await runtime.embedDocuments(queries.map((q) => q.text), { maxLength: QUERY_MAX_LENGTH });
  const session = await ort.InferenceSession.create(graphPath(model.dir, shard.embeddings instanceof Uint16Array ? "qnetScorerFp16" : "qnetScorer"));
  let truthMs = 0;
  async function* cases(): AsyncGenerator<QueryCase> {
    for (const [q, qnet] of qnets.entries()) {
      const scorer = sessionScorer(session, qnet, shard.embeddings, dim);
      const started = performance.now();
      const truth = await exhaustiveSearch(scorer, n, { k: K });
      const exhaustiveMs = performance.now() - started;
      truthMs += exhaustiveMs;
      yield { qnet, scorer, truth: truth.hits, exhaustiveMs, queryVector: queryVectors.subarray(q * dim, (q + 1) * dim) };
    }
  }
  const points = await measureCurves({
    n,
    k: K,
    graph: { offsets: shard.offsets, neighbors: shard.neighbors },
    row: (r) => embeddings.subarray(r * dim, (r + 1) * dim),
    mean,
    ipIndex: proxy.index,
    ...(shard.entryRows.length > 0 ? { entryRows: shard.entryRows } : {}),
    configs: [
      ...standardConfigs(shard.entryRows.length > 0 ? shard.entryRows : undefined),
      ...([[256, 16], [1024, 32]] as const).map(([proxySeeds, ncandidates]) => ({
        family: "proxy (query embedding)",
        label: `seeds ${proxySeeds}, ncand ${ncandidates}`,
        options: { variant: "proxy" as const, proxySeeds, ncandidates, ...(shard.entryRows.length > 0 ? { entryRows: shard.entryRows } : {}) },
        proxyAt: "query" as const,
      })),
    ],
    queries: cases(),
    onQuery: (done) => process.stderr.write(`  query ${done}/${qnets.length}\r`),
  });
  console.log(`exhaustive answers: ${seconds(truthMs)} in all`);
  console.log(formatTable(points, n));
  if (args.svg) {
    await writeSvg(args.svg, [{ title: `${args.model}: ${n.toLocaleString("en")} Debian packages, real queries`, points }], `bench/graph-search-trained.bench.ts — ${new Date().toISOString().slice(0, 10)}, onnxruntime-node CPU`);
    console.log(`SVG: ${args.svg}`);
  }
  await session.release();
  proxy.close();
} finally {
  await registry.close();
  await runtime.close();
}
