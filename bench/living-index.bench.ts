/**
 * Living indexes (issue 10), on the real stack (one GPU worker process on the CPU, the edge under
 * `wrangler dev`, radosgw), through the public API:
 *   (a) acknowledged writes per second (1-document writes at concurrency 1 and 4, and 100-document
 *       batches), and write-to-visible latency p50/p95: from sending a write to the first search that
 *       returns the document (strong consistency: the search right after the acknowledgement);
 *   (b) search p50 with a tail of 0, 1,000 and 10,000 documents over a built index, as a ratio to no tail;
 *   (c) compaction time per 10,000 tail documents (the worker's job, dispatched by maintenance).
 * (a) runs once per model: the tiny random model, and a BERT-base-sized random model (12 layers,
 * 768 wide; generated and imported once into bench/.cache). (b) and (c) use the tiny model.
 *
 *   node bin/run-ts.mjs bench/living-index.bench.ts [--writes 60] [--base-docs 20000] [--searches 15] [--models tiny,bert-base]
 */
import { access, mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { writeTinyCheckpoint } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../gpu-worker/src/model/import-checkpoint.ts";
import { PublicApi } from "../infra/dev/public-api.ts";
import { ProductStack } from "../test/support/product-stack.ts";
import { percentile } from "./stats.ts";

const { values: args } = parseArgs({
  options: {
    writes: { type: "string", default: "60" },
    "base-docs": { type: "string", default: "20000" },
    searches: { type: "string", default: "15" },
    models: { type: "string", default: "tiny,bert-base" },
  },
});
const WRITES = Number(args.writes);
const BASE_DOCS = Number(args["base-docs"]);
const SEARCHES = Number(args.searches);
const ADMIN = "living-bench-admin";
const TOPICS = ["otters", "sextants", "marmalade", "typhoons", "basalt", "accordions", "lichens", "comets"];
const text = (i: number) => `note ${i} on ${TOPICS[i % 8]} and ${TOPICS[(i * 5 + 3) % 8]}, with ${TOPICS[(i * 3 + 1) % 8]} (${i * 7})`;
const median = (xs: number[]) => percentile(xs, 50);
const ms = (x: number) => `${x.toFixed(1)} ms`;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));
const exists = (p: string) => access(p).then(() => true, () => false);

async function bertBaseModel(): Promise<string> {
  const cache = resolve("bench/.cache/living-bert-base");
  const modelDir = join(cache, "model");
  if (await exists(join(modelDir, "manifest.json"))) return modelDir;
  await mkdir(cache, { recursive: true });
  console.log("generating and importing a BERT-base-sized random checkpoint (once; cached in bench/.cache)");
  await writeTinyCheckpoint(join(cache, "checkpoint"), { seed: 7, bert: { hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072 }, qnet: { dims: [768, 768, 1] } });
  await importCheckpoint(join(cache, "checkpoint"), modelDir, { force: true, onProgress: () => {} });
  return modelDir;
}

async function withStack<T>(name: string, modelDir: string | undefined, edgeVars: Record<string, string>, run: (api: PublicApi, stack: ProductStack) => Promise<T>): Promise<T> {
  const stack = await ProductStack.start({
    prefix: `living-bench-${name}`,
    workers: 1,
    adminToken: ADMIN,
    ...(modelDir ? { modelDir } : {}),
    edgeVars: { WORKER_TIMEOUT_MS: "60000", RATE_LIMIT_PER_MINUTE: "0", RESULT_CACHE_TTL_SECONDS: "0", ...edgeVars },
    workerEnv: { DEVICE: "cpu" },
  });
  try {
    const admin = PublicApi.admin(stack.edgeUrl, ADMIN);
    await admin.createTenant("bench");
    const api = new PublicApi(stack.edgeUrl, await admin.createKey("bench", ["search", "manage"]));
    return await run(api, stack);
  } finally {
    await stack.close();
  }
}

/** (a) for one model. */
async function writeThroughput(label: string, modelDir: string | undefined): Promise<void> {
  await withStack(`writes-${label}`, modelDir, { COMPACT_TAIL_DOCS: "1000000000", COMPACT_TAIL_AGE_SECONDS: "1000000" }, async (api) => {
    await api.createIndex("w");
    let next = 0;
    const one = async () => {
      const i = next++;
      const t0 = performance.now();
      await api.write("w", { upsert: [{ id: `w${i}`, text: text(i) }] });
      const acked = performance.now() - t0;
      // Strong consistency: the first search after the acknowledgement must return it (exact, k covers the index).
      const found = (await (await api.search("w", { query: text(i), k: 1000, mode: "exact" })).json()) as { hits: { id: string }[] };
      const visible = performance.now() - t0;
      if (!found.hits.some((h) => h.id === `w${i}`)) throw new Error(`w${i} was acknowledged but not found by the next search`);
      return { acked, visible };
    };
    await one(); // warm-up
    for (const concurrency of [1, 4]) {
      const samples: { acked: number; visible: number }[] = [];
      const t0 = performance.now();
      let issued = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (issued++ < WRITES) samples.push(await one());
        }),
      );
      const wall = (performance.now() - t0) / 1000;
      console.log(
        `  [${label}] 1-doc writes, concurrency ${concurrency}: ${(samples.length / wall).toFixed(1)} acknowledged (and searched) writes/s; ` +
          `ack p50 ${ms(median(samples.map((s) => s.acked)))} p95 ${ms(percentile(samples.map((s) => s.acked), 95))}; ` +
          `write-to-visible p50 ${ms(median(samples.map((s) => s.visible)))} p95 ${ms(percentile(samples.map((s) => s.visible), 95))}`,
      );
    }
    const batches: number[] = [];
    for (let b = 0; b < 5; b++) {
      const docs = Array.from({ length: 100 }, (_, i) => ({ id: `batch${b}-${i}`, text: text(i + b * 100) }));
      const t0 = performance.now();
      await api.write("w", { upsert: docs });
      batches.push(performance.now() - t0);
    }
    console.log(`  [${label}] 100-doc batches: ack p50 ${ms(median(batches))} → ${((100 * 1000) / median(batches)).toFixed(0)} documents/s acknowledged`);
  });
}

console.log(`(a) write throughput and write-to-visible latency (${WRITES} writes per setting)`);
for (const model of args.models.split(",").filter((m) => m !== "")) {
  if (model === "tiny") await writeThroughput("tiny", undefined);
  else if (model === "bert-base") await writeThroughput("bert-base", await bertBaseModel());
  else throw new Error(`unknown model ${model}: tiny or bert-base`);
}

console.log(`\n(b) search p50 with a tail, over a built index of ${BASE_DOCS} documents; (c) compaction of 10,000 tail documents`);
await withStack("tail", undefined, { COMPACT_TAIL_DOCS: "1000000000", COMPACT_TAIL_AGE_SECONDS: "1000000" }, async (api) => {
  await api.createIndex("t");
  const body = new TextEncoder().encode(Array.from({ length: BASE_DOCS }, (_, i) => JSON.stringify({ id: `base${i}`, text: text(i) })).join("\n") + "\n");
  const build = await api.startBuild("t", await api.upload("t", [{ name: "base.jsonl", body }]), { degree: 32 });
  const built = await api.waitForBuild("t", build.id, { timeoutMs: 1_800_000 });
  if (built.state !== "succeeded") throw new Error(`build failed: ${JSON.stringify(built)}`);
  let q = 0;
  /** Strong (segments + tail) and eventual (segments only) searches interleaved, so drift hits both alike. */
  const searchP50s = async () => {
    const strong: number[] = [];
    const eventual: number[] = [];
    for (let i = 0; i < SEARCHES + 2; i++) {
      for (const [consistency, times] of [["strong", strong], ["eventual", eventual]] as const) {
        const t0 = performance.now();
        const r = await api.search("t", { query: `${TOPICS[q % 8]} ${q++}`, consistency });
        if (r.status !== 200) throw new Error(`search: ${r.status} ${await r.text()}`);
        await r.arrayBuffer();
        if (i >= 2) times.push(performance.now() - t0);
      }
    }
    return { strong: median(strong), eventual: median(eventual) };
  };
  const none = await searchP50s();
  const rows = [`  tail 0: strong p50 ${ms(none.strong)} (1.00×), eventual p50 ${ms(none.eventual)}`];
  let written = 0;
  for (const tail of [1000, 10000]) {
    while (written < tail) {
      const docs = Array.from({ length: 1000 }, (_, i) => ({ id: `tail${written + i}`, text: text(written + i + 7) }));
      await api.write("t", { upsert: docs });
      written += 1000;
    }
    const p50 = await searchP50s();
    rows.push(
      `  tail ${tail}: strong p50 ${ms(p50.strong)} (${(p50.strong / none.strong).toFixed(2)}× tail 0), ` +
        `eventual (no tail) p50 ${ms(p50.eventual)} in the same run: strong/eventual ${(p50.strong / p50.eventual).toFixed(2)}×`,
    );
  }
  console.log(rows.join("\n"));
  const before = await api.index("t");
  console.log(`  index before compaction: ${JSON.stringify({ docCount: before.docCount, pendingDocs: before.pendingDocs, segments: before.segments })}`);
});
// (c) needs maintenance to compact at once: a stack whose tail threshold is the 10,000 documents written.
await withStack("compact", undefined, { COMPACT_TAIL_DOCS: "10000", COMPACT_TAIL_AGE_SECONDS: "1000000" }, async (api) => {
  await api.createIndex("c");
  for (let w = 0; w < 10_000; w += 1000) {
    await api.write("c", { upsert: Array.from({ length: 1000 }, (_, i) => ({ id: `c${w + i}`, text: text(w + i) })) });
  }
  const t0 = performance.now();
  let detail = await api.index("c");
  while (detail.pendingDocs > 0 && performance.now() - t0 < 1_800_000) {
    await sleep(250);
    detail = await api.index("c");
  }
  console.log(`  compaction of 10,000 tail documents into a graph segment: ${((performance.now() - t0) / 1000).toFixed(1)} s from the last acknowledged write to pendingDocs 0 (${JSON.stringify({ segments: detail.segments, docCount: detail.docCount })})`);
});
