/**
 * Main-thread time per query on the worker's search path (issue 14, "a hot path without copies").
 *
 * The worker's HTTP app runs in this process (createService → app.fetch, no sockets), with the real
 * model runtime and index backend, so everything a search does on the event loop is measured:
 * parsing, tokenizing, moving q-net weights and embedding rows to and from the inference thread,
 * graph bookkeeping, the answer. `performance.eventLoopUtilization()` gives the main thread's busy
 * time over Q queries; divided by Q, that is the main-thread ms per query. The longest single
 * stretch the event loop was blocked (monitorEventLoopDelay's max) is reported beside it: a long
 * block delays every other request the worker is serving.
 *
 * Model: BERT-base-sized with random weights (768-d, 12 layers) and a 6-hidden-layer 768-d q-net
 * (about 14 MB of weights per query), generated once into <cache>. Index: one shard of random
 * float16 embeddings (the scores are meaningless; the costs are not), degree 16, also cached.
 *
 *   node bin/run-ts.mjs bench/hot-path.bench.ts [--docs 8192] [--queries 6] [--concurrency 1] [--cache bench/.cache] [--device cpu]
 *
 * It uses only APIs that exist before and after the change (createService, createIndexBackend,
 * HypencoderRuntime.load, warmUp, the fixture writer), so the same file measured the "before"
 * column on the older commit (see bench/reports/hot-path.txt for how).
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { versionPrefix } from "../shared/index/keys.ts";
import { seededRandom } from "../shared/random.ts";
import { createIndexBackend } from "../gpu-worker/src/index/index-backend-impl.ts";
import { writeTinyCheckpoint } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../gpu-worker/src/model/import-checkpoint.ts";
import { readModelManifest } from "../gpu-worker/src/model/model-manifest.ts";
import { HypencoderRuntime } from "../gpu-worker/src/model/runtime/runtime.ts";
import { createService } from "../gpu-worker/src/service/app.ts";
import { createLogger } from "../gpu-worker/src/service/logger.ts";
import { warmUp } from "../gpu-worker/src/service/warm-up.ts";
import { LocalStore } from "../gpu-worker/src/store/local-store.ts";
import { writeFixtureIndex } from "../test/support/index-fixture.ts";
import { percentile } from "./stats.ts";

const { values: args } = parseArgs({
  options: {
    docs: { type: "string", default: "8192" },
    queries: { type: "string", default: "6" },
    concurrency: { type: "string", default: "1" },
    cache: { type: "string", default: "bench/.cache" },
    device: { type: "string", default: "cpu" },
  },
});
const docCount = Number(args.docs);
const queryCount = Number(args.queries);
const concurrency = Number(args.concurrency);
const cache = resolve(args.cache);
const device = args.device as "cpu" | "cuda" | "auto";
const DIM = 768;
const TENANT = "bench";
const INDEX = "hot";

const exists = (path: string) => stat(path).then(() => true, () => false);

/** The BERT-base-sized random model, generated and imported once. */
async function model(): Promise<string> {
  const dir = join(cache, "hot-path-bert-base");
  const modelDir = join(dir, "model");
  if (!(await exists(join(dir, "ready")))) {
    console.log("generating and importing a BERT-base-sized random checkpoint with a 6-layer q-net (once; cached)");
    await mkdir(dir, { recursive: true });
    await writeTinyCheckpoint(join(dir, "checkpoint"), {
      seed: 11,
      bert: { hiddenSize: DIM, numLayers: 12, numHeads: 12, intermediateSize: 3072, maxPositions: 512 },
      qnet: { dims: [DIM, DIM, DIM, DIM, DIM, DIM, DIM, 1] },
    });
    await importCheckpoint(join(dir, "checkpoint"), modelDir, { force: true, onProgress: () => {} });
    await writeFile(join(dir, "ready"), "");
  }
  return modelDir;
}

/** One float16 shard of `docCount` random embeddings, written once. */
async function indexStore(modelId: string): Promise<LocalStore> {
  const dir = join(cache, `hot-path-index-${docCount}`);
  const store = new LocalStore(dir);
  if (!(await exists(join(dir, "ready")))) {
    console.log(`writing a ${docCount}-document index (once; cached)`);
    const rand = seededRandom(5);
    const embeddings = Float32Array.from({ length: docCount * DIM }, () => 2 * rand() - 1);
    const ids = Array.from({ length: docCount }, (_, i) => `d${i}`);
    await writeFixtureIndex({ store, prefix: versionPrefix(TENANT, INDEX, 1), tenant: TENANT, index: INDEX, version: 1, modelId, embeddings, dim: DIM, ids, degree: 16 });
    await writeFile(join(dir, "ready"), "");
  }
  return store;
}

const modelDir = await model();
const { modelId } = await readModelManifest(modelDir);
const store = await indexStore(modelId);
const scratch = await mkdtemp(join(tmpdir(), "hyp-hot-path-"));
const runtime = await HypencoderRuntime.load(modelDir, { device });
try {
  await warmUp(runtime);
  const logger = createLogger({ level: "error" });
  const backend = await createIndexBackend({
    runtime,
    store,
    cacheDir: join(scratch, "cache"),
    cacheBudgetBytes: 2 ** 34,
    preload: [{ tenant: TENANT, index: INDEX, version: 1 }],
    logger,
  });
  const service = createService({
    runtime,
    backend,
    logger,
    settings: {
      signingSecrets: [],
      insecureDev: true,
      queueMax: 64,
      concurrency: 32,
      batchMax: 16,
      batchWaitMs: 2,
      requestTimeoutMs: 600_000,
      maxBodyBytes: 1 << 20,
      maxPendingBodyBytes: 8 << 20,
      maxAnswerBytes: 4 << 20,
    },
  });

  const search = async (i: number, params: Record<string, unknown>): Promise<{ ms: number; docsScored: number }> => {
    const body = JSON.stringify({ tenant: TENANT, index: INDEX, version: 1, query: `tools for query number ${i} about graphs and text`, params });
    const started = performance.now();
    const response = await service.app.fetch(
      new Request("http://worker/v1/search", { method: "POST", headers: { "content-type": "application/json", "x-hyp-tenant": TENANT }, body }),
    );
    const answer = (await response.json()) as { stats?: { docsScored: number }; error?: unknown };
    if (response.status !== 200) throw new Error(`search answered ${response.status}: ${JSON.stringify(answer)}`);
    return { ms: performance.now() - started, docsScored: answer.stats!.docsScored };
  };

  const scenarios: [string, Record<string, unknown>][] = [
    // Pinned to the walk the report measured; b9717e0 (the "before" of bench/reports/hot-path.txt) predates `variant`: drop the key to rerun it there.
    ["graph (published, entryPoints 1024, ncandidates 64)", { k: 10, variant: "published", entryPoints: 1024, ncandidates: 64, maxIter: 16 }],
    [`exact (all ${docCount} rows)`, { k: 10, mode: "exact" }],
  ];
  console.log(`device ${[...runtime.devices.values()][0]}; ${docCount} docs, ${queryCount} queries per scenario at concurrency ${concurrency}`);
  console.log("scenario                                  | main ms/query | max block ms | wall ms/query | p50 latency ms | docs scored/query");
  const results: Record<string, unknown>[] = [];
  for (const [label, params] of scenarios) {
    await search(-1, params); // warm: shard load, session shapes
    const delay = monitorEventLoopDelay({ resolution: 1 });
    const latencies: number[] = [];
    let docsScored = 0;
    let next = 0;
    delay.enable();
    const elu = performance.eventLoopUtilization();
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < queryCount) {
          const r = await search(next++, params);
          latencies.push(r.ms);
          docsScored += r.docsScored;
        }
      }),
    );
    const wallMs = performance.now() - started;
    const busy = performance.eventLoopUtilization(elu);
    delay.disable();
    const row = {
      scenario: label,
      mainMsPerQuery: busy.active / queryCount,
      maxBlockMs: delay.max / 1e6,
      wallMsPerQuery: wallMs / queryCount,
      p50Ms: percentile(latencies, 50),
      docsScoredPerQuery: docsScored / queryCount,
    };
    results.push(row);
    console.log(
      `${label.padEnd(41)} | ${row.mainMsPerQuery.toFixed(1).padStart(13)} | ${row.maxBlockMs.toFixed(1).padStart(12)} | ${row.wallMsPerQuery.toFixed(0).padStart(13)} | ${row.p50Ms.toFixed(0).padStart(14)} | ${row.docsScoredPerQuery.toFixed(0).padStart(17)}`,
    );
  }
  console.log(`json ${JSON.stringify({ docCount, queryCount, concurrency, results })}`);
  await backend.close();
} finally {
  await runtime.close();
  await rm(scratch, { recursive: true, force: true });
}
