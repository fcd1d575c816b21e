/**
 * Search throughput of a GPU worker process where SEARCH dominates: queries per second and latency
 * at concurrency 1, 4 and 8, in one run, for
 *   - "published, one query per call": the published walk (variant "published", its defaults) with
 *     SCORE_BATCHING=0, i.e. the walk and scoring path before issue 14 (on the copy-free hot path);
 *   - "proxy, one query per call": the proxy-seeded walk (the default variant), SCORE_BATCHING=0;
 *   - "proxy + batched scoring": SCORE_BATCHING=1, concurrent searches' frontiers scored in one
 *     batched call (what the default, "auto", does on CUDA; on the CPU "auto" is one query per call);
 * each with recall@10 against exact search (mode "exact", the same worker) and docs scored per query.
 *
 * Models: the tiny test model (32-d, 2-hidden-layer q-net) and a BERT-base-sized one (768-d, 12
 * layers, 6-hidden-layer q-net), both with random weights. The index is built by the service's
 * pipeline from prebuilt embeddings (npy input): synthetic clustered rows of the model's width
 * (test/support/synthetic-corpus.ts), at the build defaults (degree 100, reverse links, k-means
 * entry rows, proxy index). Random models' q-nets prefer no region of the space (the synthetic
 * bench's "random" case), so the proxy walk's recall here is a floor, not what a trained model sees
 * (bench/reports/graph-search-trained.txt).
 *
 *   node bin/run-ts.mjs bench/search-qps.bench.ts [--models tiny,base] [--docs 20000] [--queries 16] [--levels 1,4,8]
 * Needs the local S3 (started on demand, as for the tests).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { signRequest } from "../shared/api/signing.ts";
import { buildRequestSchema, type Hit } from "../shared/api/worker-api.ts";
import { uploadPrefix } from "../shared/index/keys.ts";
import { encodeNpyFloat32 } from "../gpu-worker/src/index/build/npy.ts";
import { runBuild } from "../gpu-worker/src/index/build/run-build.ts";
import { writeTinyCheckpoint } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../gpu-worker/src/model/import-checkpoint.ts";
import { HypencoderRuntime } from "../gpu-worker/src/model/runtime/runtime.ts";
import { S3Store, createS3Client } from "../gpu-worker/src/store/s3-store.ts";
import { freePort, stopAll } from "../infra/dev/processes.ts";
import { startWorker } from "../infra/dev/stack.ts";
import { testS3Settings } from "../test/support/s3.ts";
import { clusteredEmbeddings } from "../test/support/synthetic-corpus.ts";
import { percentile } from "./stats.ts";

const { values: args } = parseArgs({
  options: {
    models: { type: "string", default: "tiny,base" },
    docs: { type: "string", default: "20000" },
    queries: { type: "string", default: "16" },
    levels: { type: "string", default: "1,4,8" },
  },
});
const DOCS = Number(args.docs);
const QUERIES = Number(args.queries);
const LEVELS = args.levels.split(",").map(Number);
const SECRET = "search-qps-secret";
const TENANT = "bench";
const WORDS = ["graphs", "text", "audio", "networks", "kernel", "fonts", "games", "science", "editors", "mail"];
const queryText = (i: number) => `tools for ${WORDS[i % WORDS.length]} and ${WORDS[(i * 7 + 3) % WORDS.length]} number ${i}`;

const CONFIGS = [
  { label: "published, one query per call", variant: "published", batching: "0" },
  { label: "proxy, one query per call", variant: "proxy", batching: "0" },
  { label: "proxy + batched scoring", variant: "proxy", batching: "1" },
] as const;

const MODELS: Record<string, { bert: Parameters<typeof writeTinyCheckpoint>[1] extends infer O ? (O extends { bert?: infer B } ? B : never) : never; qnet: { dims?: number[] } }> = {
  tiny: { bert: {}, qnet: {} },
  base: { bert: { hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072, maxPositions: 512 }, qnet: { dims: [768, 768, 768, 768, 768, 768, 768, 1] } },
};

const dir = await mkdtemp(join(tmpdir(), "hyp-search-qps-"));
try {
  const s3 = await testS3Settings("search-qps");
  const store = new S3Store({ client: createS3Client({ ...s3, forcePathStyle: true }), bucket: s3.bucket });
  for (const modelName of args.models.split(",")) {
    const spec = MODELS[modelName];
    if (!spec) throw new Error(`--models takes tiny and/or base, got ${modelName}`);
    const modelDir = join(dir, `model-${modelName}`);
    await writeTinyCheckpoint(join(dir, `checkpoint-${modelName}`), { seed: 3, bert: spec.bert, qnet: spec.qnet });
    await importCheckpoint(join(dir, `checkpoint-${modelName}`), modelDir);
    const runtime = await HypencoderRuntime.load(modelDir, { device: "cpu" });
    const dim = runtime.manifest.embeddingDim;
    const index = `qps-${modelName}`;
    const prefix = uploadPrefix(TENANT, index);
    const matrix = clusteredEmbeddings({ n: DOCS, dim, clusters: 64, seed: 1, latentDim: 4 });
    await store.put(`${prefix}emb.npy`, encodeNpyFloat32(matrix, DOCS, dim));
    await store.put(`${prefix}ids.jsonl`, new TextEncoder().encode(Array.from({ length: DOCS }, (_, i) => JSON.stringify({ id: `d${i}` })).join("\n")));
    const built = performance.now();
    await runBuild(buildRequestSchema.parse({ tenant: TENANT, index, version: 1, inputs: [{ format: "npy", key: `${prefix}emb.npy`, idsKey: `${prefix}ids.jsonl` }] }), { runtime, store });
    await runtime.close();
    const arch = runtime.manifest.qnet;
    console.log(
      `\n== ${modelName} model (${dim}-d, q-net ${arch.dims.length - 2} hidden layers), ${DOCS} docs (index built in ${((performance.now() - built) / 1000).toFixed(0)} s), ` +
        `${QUERIES} queries per level`,
    );

    const exact = new Map<number, Hit[]>();
    const rows: string[] = [];
    const qps: Record<string, Record<number, number>> = {};
    for (const config of CONFIGS) {
      const worker = await startWorker({
        name: "worker",
        port: await freePort(),
        modelDir,
        s3,
        signingSecret: SECRET,
        cacheDir: join(dir, `cache-${modelName}`),
        env: { DEVICE: "cpu", LOG_LEVEL: "error", SCORE_BATCHING: config.batching },
        onLine: () => {},
      });
      const search = async (i: number, params: Record<string, unknown>) => {
        const body = new TextEncoder().encode(JSON.stringify({ tenant: TENANT, index, version: 1, query: queryText(i), params: { k: 10, ...params } }));
        const headers = await signRequest({ secret: SECRET, method: "POST", host: new URL(worker.url).host, path: "/v1/search", tenant: TENANT, body });
        const start = performance.now();
        const response = await fetch(`${worker.url}/v1/search`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
        if (response.status !== 200) throw new Error(`search answered ${response.status}: ${await response.text()}`);
        const answer = (await response.json()) as { hits: Hit[]; stats: { docsScored: number } };
        return { ms: performance.now() - start, hits: answer.hits, docsScored: answer.stats.docsScored };
      };
      await search(-1, { variant: config.variant }); // warm-up: shard load, proxy index open
      if (exact.size === 0) for (let i = 0; i < QUERIES; i++) exact.set(i, (await search(i, { mode: "exact" })).hits);
      qps[config.label] = {};
      for (const level of LEVELS) {
        const latencies: number[] = [];
        let recallSum = 0;
        let docs = 0;
        let next = 0;
        const started = performance.now();
        await Promise.all(
          Array.from({ length: level }, async () => {
            while (next < QUERIES) {
              const i = next++;
              const found = await search(i, { variant: config.variant });
              latencies.push(found.ms);
              docs += found.docsScored;
              const truth = new Set(exact.get(i)!.map((h) => h.id));
              recallSum += found.hits.filter((h) => truth.has(h.id)).length / truth.size;
            }
          }),
        );
        const rate = QUERIES / ((performance.now() - started) / 1000);
        qps[config.label]![level] = rate;
        rows.push(
          `${config.label.padEnd(31)} | c=${String(level).padEnd(2)} | ${rate.toFixed(2).padStart(7)} q/s | p50 ${percentile(latencies, 50).toFixed(0).padStart(5)} ms | ` +
            `p95 ${percentile(latencies, 95).toFixed(0).padStart(5)} ms | recall@10 ${(recallSum / QUERIES).toFixed(3)} | docs scored ${(docs / QUERIES / DOCS * 100).toFixed(2)}%`,
        );
      }
      await worker.process.stop();
    }
    console.log(rows.join("\n"));
    const base = qps[CONFIGS[0].label]!;
    for (const config of CONFIGS.slice(1)) {
      console.log(`${config.label} / published, one query per call: ${LEVELS.map((l) => `c=${l} ×${(qps[config.label]![l]! / base[l]!).toFixed(2)}`).join(", ")}`);
    }
    const unbatched = qps[CONFIGS[1].label]!;
    const batched = qps[CONFIGS[2].label]!;
    console.log(`batched / one query per call (proxy walk): ${LEVELS.map((l) => `c=${l} ×${(batched[l]! / unbatched[l]!).toFixed(2)}`).join(", ")}`);
  }
} finally {
  await stopAll(5_000);
  await rm(dir, { recursive: true, force: true });
}
