/**
 * `npm run bench [-- name…]`: runs the benchmarks one after another (never in parallel: they would
 * share the cores) and writes each one's output to bench/reports/<name>.txt with the machine's facts.
 * Benchmarks are not tests; they measure, and the reports are what the closing notes quote.
 */
import { spawn } from "node:child_process";
import { writeFile, mkdir } from "node:fs/promises";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";

const BENCHES: Record<string, { file: string; args: string[] }> = {
  "qnet-scoring": { file: "bench/qnet-scoring.bench.ts", args: ["--batches=4096,16384,65536", "--runs=5"] },
  // Issue 14: Q = 1, 4, 8 frontiers through the ScoreBatcher against one single-query run each, same process.
  "batched-scoring": { file: "bench/batched-scoring.bench.ts", args: ["--queries=1,4,8", "--rows=32,256", "--models=tiny,base", "--runs=9", "--tiny-runs=200"] },
  "query-encode": { file: "bench/query-encode.bench.ts", args: ["--runs=30"] },
  // Recall against docs scored for the published, best-first and proxy-seeded walks; the curves as SVG beside the report.
  "graph-search": { file: "bench/graph-search.bench.ts", args: ["--n", "10000,100000", "--queries", "20", "--cache", "bench/.cache", "--svg", "bench/reports/graph-search.svg"] },
  // Opt-in (not in the default run): about an hour on 2 cores the first time; the cache makes reruns minutes.
  "graph-search-1m": { file: "bench/graph-search.bench.ts", args: ["--n", "1000000", "--queries", "20", "--cache", "bench/.cache", "--svg", "bench/reports/graph-search-1m.svg"] },
  // The same curves with the trained model on its real corpus and queries (needs models/debian-mini; the index is cached in bench/.cache/relevance).
  "graph-search-trained": { file: "bench/graph-search-trained.bench.ts", args: ["--known-items", "200", "--svg", "bench/reports/graph-search-trained.svg"] },
  // Search-dominated QPS at concurrency 1, 4, 8: published vs proxy walk, one query per call vs batched scoring.
  "search-qps": { file: "bench/search-qps.bench.ts", args: ["--models", "tiny,base", "--docs", "20000", "--queries", "16", "--levels", "1,4,8"] },
  // The per-shard proxy index: build cost against the kNN graph, search latency and recall by count.
  "proxy-index": { file: "bench/proxy-index.bench.ts", args: ["--n", "100000", "--dim", "768", "--queries", "30", "--knn"] },
  "shard-load": { file: "bench/shard-load.bench.ts", args: ["--runs", "7"] },
  "worker-qps": { file: "bench/worker-qps.bench.ts", args: ["--queries", "48", "--concurrency", "8"] },
  // Issue 14: main-thread ms per query on the search path (BERT-base-sized random model, 6-layer q-net; generated once into bench/.cache).
  "hot-path": { file: "bench/hot-path.bench.ts", args: ["--docs", "8192", "--queries", "6", "--cache", "bench/.cache"] },
  // Needs models/debian-mini and models/debian-mini-biencoder-distilled (the same-recipe baseline); the first run encodes the corpus once per model (cached in bench/.cache).
  relevance: { file: "bench/relevance.bench.ts", args: ["--known-items", "500"] },
  // Starts the stack several times; the BERT-base-sized model is generated once (bench/.cache).
  "living-index": { file: "bench/living-index.bench.ts", args: ["--writes", "60", "--base-docs", "20000", "--searches", "15"] },
  compaction: { file: "bench/compaction.bench.ts", args: ["--docs", "10000", "--dim", "768", "--degree", "100", "--runs", "3"] },
  // Filtered search (issue 12): recall@10 and p50 against selectivity per plan at 100k docs, and compile time at 1M rows.
  filters: { file: "bench/filters.bench.ts", args: ["--n", "100000", "--queries", "10", "--compile-rows", "1000000"] },
  edge: { file: "bench/edge.bench.ts", args: ["--runs", "40", "--queries", "120", "--concurrency", "4"] },
};

const selected = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const OPT_IN = new Set(["graph-search-1m"]);
const names = selected.length > 0 ? selected : Object.keys(BENCHES).filter((name) => !OPT_IN.has(name));
for (const name of names) {
  if (!BENCHES[name]) {
    console.error(`unknown benchmark "${name}"; known: ${Object.keys(BENCHES).join(", ")}`);
    process.exit(2);
  }
}

await mkdir("bench/reports", { recursive: true });
for (const name of names) {
  const { file, args } = BENCHES[name]!;
  const header = [
    `# ${name}`,
    `date: ${new Date().toISOString()}`,
    `command: node bin/run-ts.mjs ${file} ${args.join(" ")}`,
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, load ${loadavg().map((l) => l.toFixed(1)).join(" ")}`,
    `node ${process.version}, GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES ?? "(unset)"}`,
    "",
  ].join("\n");
  process.stdout.write(`${header}\n`);
  const output = await runAndTee("node", ["bin/run-ts.mjs", file, ...args]);
  await writeFile(join("bench/reports", `${name}.txt`), `${header}\n${output}`);
}

function runAndTee(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      process.stdout.write(chunk);
    });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(output) : reject(new Error(`${args[1]} exited with ${code}`))));
  });
}
