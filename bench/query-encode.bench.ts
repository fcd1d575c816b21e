/**
 * Query-encode latency through the real runtime (tokenizer → inference thread → BERT + hyperhead)
 * for a BERT-base-sized random model (768-d, 12 layers, 12 heads, 6-hidden-layer 768-d q-net),
 * with 64-token queries, one query per call, on CPU.
 *
 *   npm run bench -- query-encode            (or: node bin/run-ts.mjs bench/query-encode.bench.ts [--runs=30])
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { writeTinyCheckpoint } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../gpu-worker/src/model/import-checkpoint.ts";
import { HypencoderRuntime } from "../gpu-worker/src/model/runtime/runtime.ts";
import { percentile } from "./stats.ts";

const { values: args } = parseArgs({ options: { runs: { type: "string", default: "30" }, tokens: { type: "string", default: "64" } } });
const runs = Number(args.runs);
const tokens = Number(args.tokens);

const dir = await mkdtemp(join(tmpdir(), "hypencoder-bench-"));
try {
  let t = performance.now();
  await writeTinyCheckpoint(join(dir, "checkpoint"), {
    seed: 1,
    bert: { hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072, maxPositions: 512 },
    qnet: { dims: [768, 768, 768, 768, 768, 768, 768, 1] },
  });
  console.log(`checkpoint written: ${((performance.now() - t) / 1000).toFixed(1)} s`);
  t = performance.now();
  await importCheckpoint(join(dir, "checkpoint"), join(dir, "model"));
  console.log(`import: ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const runtime = await HypencoderRuntime.load(join(dir, "model"), { device: "cpu" });
  // Words from the fixture vocabulary, so each query is exactly `tokens` ids long with [CLS] and [SEP].
  const query = (i: number) => Array.from({ length: tokens - 2 }, (_, w) => ["search", "graph", "network", "query"][(i + w) % 4]).join(" ");
  await runtime.encodeQueries([query(0)]); // session load and warm-up
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await runtime.encodeQueries([query(i + 1)], { maxLength: tokens });
    times.push(performance.now() - start);
  }
  await runtime.close();
  console.log(`query encode, ${tokens} tokens, batch 1, ${runs} runs: p50 ${percentile(times, 50).toFixed(1)} ms, p95 ${percentile(times, 95).toFixed(1)} ms, min ${Math.min(...times).toFixed(1)} ms`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
