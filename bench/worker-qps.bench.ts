/**
 * Queries per second of a GPU worker process under concurrency 8, with dynamic batching of the query
 * encoder (BATCH_MAX=16) and without it (BATCH_MAX=1), same model, index and queries, in one run.
 * The model is BERT-base-sized with random weights (768-d, 12 layers, 6-hidden-layer q-net), so the
 * query encoder dominates as it does in production; the index is small so search is cheap.
 *
 *   node bin/run-ts.mjs bench/worker-qps.bench.ts [--queries 48] [--concurrency 8]
 * Needs the local S3 (eval "$(bash infra/s3/ceph-start.sh)", or it is started on demand).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { signRequest } from "../shared/api/signing.ts";
import { writeTinyCheckpoint } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../gpu-worker/src/model/import-checkpoint.ts";
import { runBuild } from "../gpu-worker/src/index/build/run-build.ts";
import { HypencoderRuntime } from "../gpu-worker/src/model/runtime/runtime.ts";
import { buildRequestSchema } from "../shared/api/worker-api.ts";
import { S3Store, createS3Client } from "../gpu-worker/src/store/s3-store.ts";
import { uploadPrefix } from "../shared/index/keys.ts";
import { freePort, stopAll } from "../infra/dev/processes.ts";
import { startWorker } from "../infra/dev/stack.ts";
import { testS3Settings } from "../test/support/s3.ts";
import { percentile } from "./stats.ts";

const { values: args } = parseArgs({ options: { queries: { type: "string", default: "48" }, concurrency: { type: "string", default: "8" } } });
const queryCount = Number(args.queries);
const concurrency = Number(args.concurrency);
const SECRET = "qps-bench-secret";
const TENANT = "bench";

const dir = await mkdtemp(join(tmpdir(), "hyp-qps-"));
try {
  const modelDir = join(dir, "model");
  await writeTinyCheckpoint(join(dir, "checkpoint"), {
    seed: 3,
    bert: { hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072, maxPositions: 512 },
    qnet: { dims: [768, 768, 768, 768, 768, 768, 768, 1] },
  });
  await importCheckpoint(join(dir, "checkpoint"), modelDir);
  const s3 = await testS3Settings("qps-bench");
  const store = new S3Store({ client: createS3Client({ ...s3, forcePathStyle: true }), bucket: s3.bucket });
  const docsKey = `${uploadPrefix(TENANT, "docs")}docs.jsonl`;
  const docs = Array.from({ length: 500 }, (_, i) => JSON.stringify({ id: `d${i}`, text: `package ${i} provides tools for ${["graphs", "text", "audio", "networks"][i % 4]}` }));
  await store.put(docsKey, new TextEncoder().encode(docs.join("\n")));
  const runtime = await HypencoderRuntime.load(modelDir, { device: "cpu" });
  await runBuild(buildRequestSchema.parse({ tenant: TENANT, index: "qps", version: 1, inputs: [{ format: "jsonl", key: docsKey }], degree: 16 }), { runtime, store });
  await runtime.close();
  console.log(`model and index ready (500 docs); ${queryCount} queries at concurrency ${concurrency}`);

  const rows: string[] = [];
  const rates: Record<string, number> = {};
  for (const [label, batchMax] of [["with batching (BATCH_MAX=16)", "16"], ["without batching (BATCH_MAX=1)", "1"], ["with batching, again", "16"]] as const) {
    const worker = await startWorker({
      name: "worker",
      port: await freePort(),
      modelDir,
      s3,
      signingSecret: SECRET,
      cacheDir: join(dir, "cache"),
      env: { BATCH_MAX: batchMax, DEVICE: "cpu", LOG_LEVEL: "error" },
      onLine: () => {},
    });
    const search = async (i: number) => {
      const body = new TextEncoder().encode(
        JSON.stringify({ tenant: TENANT, index: "qps", version: 1, query: `tools for query number ${i} about graphs`, params: { k: 10 } }),
      );
      const headers = await signRequest({ secret: SECRET, method: "POST", host: new URL(worker.url).host, path: "/v1/search", tenant: TENANT, body });
      const start = performance.now();
      const response = await fetch(`${worker.url}/v1/search`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
      if (response.status !== 200) throw new Error(`search answered ${response.status}: ${await response.text()}`);
      await response.arrayBuffer();
      return performance.now() - start;
    };
    await search(-1); // warm-up: shard load
    const latencies: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < queryCount) latencies.push(await search(next++));
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    rates[label] = queryCount / seconds;
    rows.push(`${label.padEnd(32)} | ${(queryCount / seconds).toFixed(2).padStart(6)} q/s | p50 ${percentile(latencies, 50).toFixed(0)} ms | p95 ${percentile(latencies, 95).toFixed(0)} ms`);
    await worker.process.stop();
  }
  console.log(rows.join("\n"));
  const withBatching = (rates["with batching (BATCH_MAX=16)"]! + rates["with batching, again"]!) / 2;
  console.log(`ratio (with / without batching, mean of the two batched runs): ${(withBatching / rates["without batching (BATCH_MAX=1)"]!).toFixed(2)}`);
} finally {
  await stopAll(5_000);
  await rm(dir, { recursive: true, force: true });
}
