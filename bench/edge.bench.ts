/**
 * The edge under `wrangler dev` in front of three GPU worker processes (tiny demo model, CPU) and the
 * real S3 (radosgw), with a 1,500-document index built through the public API into 6 shards:
 *   (a) search latency of a result-cache HIT vs a MISS (medians, ratio);
 *   (b) the edge's overhead: the same search signed straight to one worker vs through the edge
 *       (cache-busting queries; ratio of medians);
 *   (c) fan-out throughput over the 6 shards (queries/s through the edge at concurrency 4), and the
 *       merge step alone (mergeTopK of 6 lists of k=100) in merges/s.
 * Not a test: it measures and prints.
 *
 *   node bin/run-ts.mjs bench/edge.bench.ts [--runs 40] [--queries 120] [--concurrency 4]
 * Needs the local S3 (eval "$(bash infra/s3/ceph-start.sh)", or it is started on demand).
 */
import { parseArgs } from "node:util";
import { mergeTopK } from "../edge/src/routing/merge.ts";
import { PublicApi } from "../infra/dev/public-api.ts";
import { signRequest } from "../shared/api/signing.ts";
import type { Hit } from "../shared/api/worker-api.ts";
import { ProductStack } from "../test/support/product-stack.ts";
import { percentile } from "./stats.ts";

const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "40" },
    queries: { type: "string", default: "120" },
    concurrency: { type: "string", default: "4" },
  },
});
const runs = Number(args.runs);
const queryCount = Number(args.queries);
const concurrency = Number(args.concurrency);
const SECRET = "edge-bench-secret";
const ADMIN = "edge-bench-admin";
const SHARDS_WANTED = 6;
const TOPICS = ["zebras", "quantum", "umbrellas", "graphs", "rain"];
// Padding sizes the documents so that the minimum shardBytes (64 KiB) splits 1,500 of them into 6 shards.
const PAD = process.env.EDGE_BENCH_PAD ? Number(process.env.EDGE_BENCH_PAD) : 10;
const DOCS = Array.from({ length: 1500 }, (_, i) => ({ id: `d${i}`, text: `document ${i} about ${TOPICS[i % 5]} number ${i * 7}${" filler".repeat(PAD)}` }));
const SEARCH = { k: 10, mode: "approx", entryPoints: 200, ncandidates: 16, maxIter: 8 } as const;

const median = (xs: number[]) => percentile(xs, 50);
const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
let unique = 0;
const freshQuery = () => `${TOPICS[unique % 5]} bench query ${unique++} ${Math.random().toString(36).slice(2, 8)}`;

// INTEGRATION_VERBOSE=1 prints the processes' output.
const stack = await ProductStack.start({
  prefix: "edge-bench",
  workers: 3,
  signingSecret: SECRET,
  adminToken: ADMIN,
  edgeVars: { WORKER_TIMEOUT_MS: "20000", RATE_LIMIT_PER_MINUTE: "0" },
  workerEnv: { DEVICE: "cpu" },
});
try {
  const edge = stack.edgeUrl;
  const admin = PublicApi.admin(edge, ADMIN);
  await admin.createTenant("bench", "Bench");
  const api = new PublicApi(edge, await admin.createKey("bench", ["search", "manage"]));
  await api.createIndex("docs");
  const body = new TextEncoder().encode(DOCS.map((d) => JSON.stringify(d)).join("\n") + "\n");
  const uploadId = await api.upload("docs", [{ name: "docs.jsonl", body }]);
  const started = await api.startBuild("docs", uploadId, { degree: 8, shardBytes: 65_536 });
  const built = await api.waitForBuild("docs", started.id, { timeoutMs: 300_000 });
  if (built.state !== "succeeded") throw new Error(`build failed: ${JSON.stringify(built)}`);
  const version = built.version;

  type Stats = { shardsSearched: number; ms: { queue: number; encode: number; search: number; total: number } };
  const edgeSearch = async (query: string): Promise<{ ms: number; cache: string | null; shards: number; stats: Stats }> => {
    const t0 = performance.now();
    const response = await api.search("docs", { query, ...SEARCH });
    const answer = (await response.json()) as { stats: Stats; partial: boolean };
    const ms = performance.now() - t0;
    if (response.status !== 200 || answer.partial) throw new Error(`edge search failed: ${response.status} ${JSON.stringify(answer)}`);
    return { ms, cache: response.headers.get("x-cache"), shards: answer.stats.shardsSearched, stats: answer.stats };
  };
  /** Medians of the worker-reported phases (for the edge: the slowest worker's, as merged). */
  const phases = (list: Stats[]) => `queue ${fmt(median(list.map((s) => s.ms.queue)))}, encode ${fmt(median(list.map((s) => s.ms.encode)))}, search ${fmt(median(list.map((s) => s.ms.search)))}`;
  const first = await edgeSearch(freshQuery());
  console.log(`stack ready: 3 workers, edge ${edge}; index docs v${version}: ${DOCS.length} docs in ${first.shards} shards (wanted ${SHARDS_WANTED})`);
  if (first.shards !== SHARDS_WANTED) console.log(`  (set EDGE_BENCH_PAD to change document size; ${first.shards} shards measured)`);
  // Warm every worker's shard cache and the query path before measuring.
  for (let i = 0; i < 12; i++) await edgeSearch(freshQuery());

  // (a) result cache: misses are distinct queries, hits repeat one query.
  const misses: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await edgeSearch(freshQuery());
    if (r.cache !== "MISS") throw new Error(`expected a MISS, got ${r.cache}`);
    misses.push(r.ms);
  }
  const repeated = freshQuery();
  await edgeSearch(repeated);
  await new Promise((r) => setTimeout(r, 200)); // the cache write (waitUntil) lands
  const hits: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await edgeSearch(repeated);
    if (r.cache !== "HIT") throw new Error(`expected a HIT, got ${r.cache}`);
    hits.push(r.ms);
  }
  console.log(`\n(a) result cache, ${runs} searches each (k=10 approx, ${first.shards} shards)`);
  console.log(`  MISS median ${fmt(median(misses))} (p90 ${fmt(percentile(misses, 90))})`);
  console.log(`  HIT  median ${fmt(median(hits))} (p90 ${fmt(percentile(hits, 90))})`);
  console.log(`  MISS/HIT ratio of medians: ${(median(misses) / median(hits)).toFixed(1)}×`);

  // (b) edge overhead: one worker searching every shard, signed directly, vs the edge (cache-busting queries).
  const worker = stack.workers[0]!.url;
  const directStats: Stats[] = [];
  const edgeStats: Stats[] = [];
  const directSearch = async (query: string): Promise<number> => {
    const json = new TextEncoder().encode(JSON.stringify({ tenant: "bench", index: "docs", version, query, params: SEARCH }));
    const t0 = performance.now();
    const headers = await signRequest({ secret: SECRET, method: "POST", host: new URL(worker).host, path: "/v1/search", tenant: "bench", body: json });
    const response = await fetch(`${worker}/v1/search`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: json });
    const answer = (await response.json()) as { stats: Stats };
    const ms = performance.now() - t0;
    if (response.status !== 200) throw new Error(`direct search: ${response.status}`);
    directStats.push(answer.stats);
    return ms;
  };
  for (let i = 0; i < 5; i++) await directSearch(freshQuery());
  const direct: number[] = [];
  const viaEdge: number[] = [];
  for (let i = 0; i < runs; i++) {
    // Interleaved, so drift (GC, thermal) hits both alike.
    direct.push(await directSearch(freshQuery()));
    const r = await edgeSearch(freshQuery());
    viaEdge.push(r.ms);
    edgeStats.push(r.stats);
  }
  console.log(`\n(b) edge overhead, ${runs} cache-busting searches each`);
  console.log(`  direct to one worker (all shards, signed) median ${fmt(median(direct))} (p90 ${fmt(percentile(direct, 90))})`);
  console.log(`  through the edge (fan-out to 3 workers)  median ${fmt(median(viaEdge))} (p90 ${fmt(percentile(viaEdge, 90))})`);
  console.log(`  worker-reported phases, direct: ${phases(directStats.slice(-runs))}`);
  console.log(`  worker-reported phases, edge:   ${phases(edgeStats)}`);
  console.log(`  edge/direct ratio of medians: ${(median(viaEdge) / median(direct)).toFixed(2)}× (+${fmt(median(viaEdge) - median(direct))})`);

  // (c) fan-out throughput at fixed concurrency, then the merge alone.
  const queries = Array.from({ length: queryCount }, () => freshQuery());
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < queries.length) await edgeSearch(queries[next++]!);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  console.log(`\n(c) fan-out over ${first.shards} shards: ${queryCount} distinct queries at concurrency ${concurrency}`);
  console.log(`  ${(queryCount / seconds).toFixed(1)} queries/s through the edge (${seconds.toFixed(2)} s)`);

  const lists: Hit[][] = Array.from({ length: SHARDS_WANTED }, (_, s) =>
    Array.from({ length: 100 }, (_, i) => ({ id: `s${s}-d${i}`, score: 50 - i * 0.4 + ((s * 7919 + i * 104729) % 1000) / 1000 })).sort((a, b) => b.score - a.score),
  );
  for (let i = 0; i < 2_000; i++) mergeTopK(lists, 100); // JIT warm-up
  let merges = 0;
  const m0 = performance.now();
  while (performance.now() - m0 < 2_000) {
    for (let i = 0; i < 100; i++) mergeTopK(lists, 100);
    merges += 100;
  }
  const mergeSeconds = (performance.now() - m0) / 1000;
  console.log(`  merge alone (mergeTopK, ${SHARDS_WANTED} lists of k=100 → top 100, Node ${process.version}): ${Math.round(merges / mergeSeconds).toLocaleString("en-US")} merges/s (${((mergeSeconds / merges) * 1e6).toFixed(1)} µs each)`);
} finally {
  await stack.close();
}
