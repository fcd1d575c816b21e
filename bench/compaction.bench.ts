/**
 * Compaction time per 10,000 documents (issue 10): runCompaction over a WAL tail of `--docs`
 * documents with random embeddings (no model: the WAL already holds them), in a local folder store,
 * so the figure is the worker's own work (read and fold the tail, graph, entry rows, encode, write)
 * and not the network's. Two cases:
 *
 * - "first": base version 0, the whole tail becomes one segment (more if over 256 MiB);
 * - "on top": a base of `--docs` documents (the first case's output) and a second tail of `--docs`
 *   documents of which a tenth replace base documents and a tenth delete them: deletion bitmaps,
 *   plus the new segment.
 *
 *   node bin/run-ts.mjs bench/compaction.bench.ts [--docs 10000] [--dim 768] [--degree 100] [--runs 3]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { walKey } from "../shared/index/keys.ts";
import { batchHash, encodeWalBatch, type WalDocument } from "../shared/index/wal.ts";
import { runCompaction } from "../gpu-worker/src/index/compaction/run-compaction.ts";
import { seededRandom } from "../gpu-worker/src/search/random.ts";
import { LocalStore } from "../gpu-worker/src/store/local-store.ts";
import { percentile } from "./stats.ts";

const { values: args } = parseArgs({
  options: {
    docs: { type: "string", default: "10000" },
    dim: { type: "string", default: "768" },
    degree: { type: "string", default: "100" },
    runs: { type: "string", default: "3" },
  },
});
const DOCS = Number(args.docs);
const DIM = Number(args.dim);
const DEGREE = Number(args.degree);
const RUNS = Number(args.runs);
const MODEL_ID = "b".repeat(64);
const BATCH = 1000; // documents per WAL batch, the write API's maximum
const WORDS = "graph search query network weight embedding shard index model token vector score".split(" ");

const rand = seededRandom(7);
const text = (i: number) => Array.from({ length: 40 }, (_, j) => WORDS[(i * 7 + j * 3) % WORDS.length]).join(" ");

/** Writes WAL batches from seq `firstSeq`; upserts `ids` (in batches of BATCH) and deletes `deletes` in the first batch. */
async function writeTail(store: LocalStore, index: string, firstSeq: number, ids: string[], deletes: string[]): Promise<number> {
  let seq = firstSeq;
  for (let start = 0; start < ids.length || seq === firstSeq; start += BATCH) {
    const upsert: WalDocument[] = ids.slice(start, start + BATCH).map((id, i) => ({ id, fields: { text: text(start + i) } }));
    const embeddings = new Float32Array(upsert.length * DIM);
    for (let i = 0; i < embeddings.length; i++) embeddings[i] = rand() * 2 - 1;
    const del = seq === firstSeq ? deletes : [];
    const bytes = encodeWalBatch({ tenant: "bench", index, seq, batchHash: batchHash(upsert, del), createdAt: new Date().toISOString(), modelId: MODEL_ID, dim: DIM, upsert, embeddings, delete: del });
    await store.put(walKey("bench", index, seq), bytes);
    seq++;
  }
  return seq - 1;
}

const root = await mkdtemp(join(tmpdir(), "compaction-bench-"));
try {
  const store = new LocalStore(join(root, "store"));
  const deps = { store, model: { modelId: MODEL_ID, embeddingDim: DIM }, onWarning: () => {} };
  const first: number[] = [];
  const onTop: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const index = `run-${run}`;
    const ids = Array.from({ length: DOCS }, (_, i) => `doc-${i}`);
    const toSeq = await writeTail(store, index, 1, ids, []);
    let started = performance.now();
    await runCompaction({ tenant: "bench", index, baseVersion: 0, version: 1, toSeq, degree: DEGREE }, deps);
    first.push(performance.now() - started);

    const replaced = ids.filter((_, i) => i % 10 === 0);
    const deleted = ids.filter((_, i) => i % 10 === 1);
    const fresh = Array.from({ length: DOCS - replaced.length }, (_, i) => `new-${i}`);
    const toSeq2 = await writeTail(store, index, toSeq + 1, [...replaced, ...fresh], deleted);
    started = performance.now();
    const { stats } = await runCompaction({ tenant: "bench", index, baseVersion: 1, version: 2, toSeq: toSeq2, degree: DEGREE }, deps);
    onTop.push(performance.now() - started);
    if (run === 0) console.log(`on-top compaction: ${stats.rowsHidden} base rows hidden, ${stats.tailDocs} tail documents, ${stats.segmentsWritten} new segment(s)`);
  }
  const per10k = (ms: number) => (ms / DOCS) * 10_000;
  const line = (name: string, ms: number[]) =>
    console.log(`${name.padEnd(8)} ${DOCS} docs, dim ${DIM}, degree ${DEGREE}: p50 ${(percentile(ms, 50) / 1000).toFixed(2)} s (${(per10k(percentile(ms, 50)) / 1000).toFixed(2)} s per 10,000 documents), runs ${ms.map((m) => (m / 1000).toFixed(2)).join(" ")}`);
  line("first", first);
  line("on top", onTop);
} finally {
  await rm(root, { recursive: true, force: true });
}
