/**
 * Relevance on real labels: the trained Debian models against BM25, on the Debian corpus
 * (infra/dev/corpus/debian-main.jsonl.gz), with every package in the collection.
 *
 *   node bin/run-ts.mjs bench/relevance.bench.ts [--model models/debian-mini]
 *     [--bi-encoder models/debian-mini-biencoder-distilled] [--known-items 1000] [--seed 13] [--cache bench/.cache/relevance]
 *
 * Two query sets:
 * - known-item: the synopsis of a test-split package (a seeded sample of --known-items of them) is the
 *   query, and that package is the one relevant document: MRR@10, recall@10 and recall@100;
 * - tag queries: bench/relevance/tag-queries.json, hand-written queries each defined by a Debtag
 *   conjunction; every package carrying all its tags is relevant: nDCG@10, P@10 (and recall@100).
 *   The trainer also learns from Debtag-derived queries of train-split packages, so these are judged
 *   twice: on every package, and on test-split packages only (others skipped in each top 100).
 *
 * The collection is every package of the corpus, and a document's text is its long description
 * WITHOUT the synopsis (infra/dev/corpus/debian-corpus.ts `descriptionOnly`): the known-item query is the
 * synopsis, so leaving it in would make that task exact string matching. Both query sets search the
 * same collection.
 *
 * Systems, in one run:
 * - BM25+ from MiniSearch (bench/relevance/bm25.ts);
 * - the same-backbone bi-encoder: its BERT through our ONNX document-encoder graph, inner products
 *   of the pooled vectors (its config's pooling) over all documents (bench/relevance/bi-encoder.ts);
 * - the Hypencoder, imported with `hypencoder import`, over an index built by the service's build
 *   pipeline (runBuild, build defaults) and searched by the service's searchIndex: `exact` (every
 *   document scored) and `approx` at the service's search defaults (SEARCH_DEFAULTS), with docs scored.
 *
 * Embeddings and the index are cached under --cache, keyed by the checkpoint's content, so a rerun
 * only searches; the first run encodes the collection once per model.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { SEARCH_DEFAULTS, type SearchParams } from "../shared/api/worker-api.ts";
import { IndexRegistry, type LoadedIndex } from "../gpu-worker/src/index/index-registry.ts";
import { ShardCache } from "../gpu-worker/src/index/shard-cache.ts";
import { searchIndex } from "../gpu-worker/src/index/shard-search.ts";
import { HypencoderRuntime } from "../gpu-worker/src/model/runtime/runtime.ts";
import type { Pooling } from "../gpu-worker/src/model/types.ts";
import { descriptionOnly, readDebianCorpus } from "../infra/dev/corpus/debian-corpus.ts";
import { mean, ndcgAt, precisionAt, recallAt, reciprocalRank, topIds } from "../test/support/relevance-metrics.ts";
import { BiEncoder, innerProducts } from "./relevance/bi-encoder.ts";
import { Bm25Index } from "./relevance/bm25.ts";
import { percentile } from "./stats.ts";
import { builtIndex, checkpointKey, importedModel, knownItemQueries, type Query, tagQueries } from "./relevance/debian-collection.ts";

const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: "models/debian-mini" },
    "bi-encoder": { type: "string", default: "models/debian-mini-biencoder-distilled" },
    "known-items": { type: "string", default: "1000" },
    seed: { type: "string", default: "13" },
    cache: { type: "string", default: "bench/.cache/relevance" },
  },
});
const CACHE = args.cache;
const DEEP = 100;
const QUERY_MAX_LENGTH = 64;

const log = (message: string) => process.stderr.write(`[relevance] ${message}\n`);
const out = (line = "") => process.stdout.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------
// Queries and judgements
// ---------------------------------------------------------------------------------------------



// ---------------------------------------------------------------------------------------------
// Systems: each answers every query with a ranking (best first) and says what it cost
// ---------------------------------------------------------------------------------------------

interface Answers {
  rankings: string[][];
  /** Search time per query, query encoding excluded (it is reported once per model). */
  ms: number[];
  docsScored?: number[];
}

type QuerySets = Record<"known" | "tags", Query[]>;
type SystemAnswers = Record<"known" | "tags", Answers>;

async function timed<T>(run: () => Promise<T> | T): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
}

async function bm25(docs: { id: string; text: string }[], sets: QuerySets): Promise<SystemAnswers> {
  const { value: index, ms } = await timed(() => new Bm25Index(docs));
  log(`BM25 index of ${docs.length} documents in ${(ms / 1000).toFixed(1)} s`);
  const answer = async (queries: Query[]): Promise<Answers> => {
    const rankings: string[][] = [];
    const times: number[] = [];
    for (const q of queries) {
      const { value, ms: queryMs } = await timed(() => index.search(q.text, DEEP));
      rankings.push(value);
      times.push(queryMs);
    }
    return { rankings, ms: times };
  };
  return { known: await answer(sets.known), tags: await answer(sets.tags) };
}

async function cachedFloat32(path: string, make: () => Promise<Float32Array>): Promise<Float32Array> {
  try {
    const bytes = await readFile(path);
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  } catch {
    const value = await make();
    await writeFile(`${path}.tmp`, value);
    await rename(`${path}.tmp`, path);
    return value;
  }
}

async function biEncoder(checkpoint: string, docs: { id: string; text: string }[], docMaxLength: number, sets: QuerySets): Promise<SystemAnswers & { key: string; pooling: Pooling }> {
  const key = await checkpointKey(checkpoint);
  const encoder = await BiEncoder.load(checkpoint, join(CACHE, `bi-encoder-${key}`));
  const dim = encoder.dims.hiddenSize;
  const ids = docs.map((d) => d.id);
  try {
    const embeddings = await cachedFloat32(join(CACHE, `bi-encoder-${key}-docs-${docMaxLength}.f32`), async () => {
      log(`bi-encoder: encoding ${docs.length} documents (cached for later runs)`);
      let last = 0;
      const { value, ms } = await timed(() =>
        encoder.encode(docs.map((d) => d.text), docMaxLength, (done, total) => {
          if (done - last >= 5000 || done === total) log(`bi-encoder: ${(last = done)}/${total}`);
        }),
      );
      log(`bi-encoder: ${docs.length} documents in ${(ms / 1000).toFixed(0)} s`);
      return value;
    });
    const answer = async (queries: Query[]): Promise<Answers> => {
      const vectors = await encoder.encode(queries.map((q) => q.text), QUERY_MAX_LENGTH);
      const rankings: string[][] = [];
      const times: number[] = [];
      queries.forEach((_, q) => {
        const started = performance.now();
        rankings.push(topIds(innerProducts(vectors.subarray(q * dim, (q + 1) * dim), embeddings, dim), ids, DEEP));
        times.push(performance.now() - started);
      });
      return { rankings, ms: times, docsScored: queries.map(() => docs.length) };
    };
    return { known: await answer(sets.known), tags: await answer(sets.tags), key, pooling: encoder.pooling };
  } finally {
    await encoder.close();
  }
}

/** `hypencoder import` of the checkpoint into the cache, once per checkpoint content. */
async function hypencoder(checkpoint: string, docs: { id: string; text: string }[], sets: QuerySets) {
  const model = await importedModel(checkpoint, CACHE);
  const runtime = await HypencoderRuntime.load(model.dir);
  const cacheDir = join(CACHE, `shard-cache-${model.key}`);
  let registry: IndexRegistry | undefined;
  try {
    const store = await builtIndex(runtime, docs, model.key, CACHE);
    registry = new IndexRegistry({ store, cache: new ShardCache({ dir: cacheDir, budgetBytes: Number.MAX_SAFE_INTEGER, store }), modelId: runtime.manifest.modelId });
    const index = await registry.at("");
    const exact: SearchParams = { ...SEARCH_DEFAULTS, mode: "exact", k: DEEP, seed: 0 };
    const approx: SearchParams = { ...SEARCH_DEFAULTS, seed: 0 };
    const encodeMs: number[] = [];
    const answer = async (queries: Query[]) => {
      const { value: qnets, ms } = await timed(() => runtime.encodeQueries(queries.map((q) => q.text), { maxLength: QUERY_MAX_LENGTH }));
      encodeMs.push(ms / queries.length);
      const results = { exact: empty(), approx: empty() };
      for (const [i, qnet] of qnets.entries()) {
        const prepared = await runtime.prepareQNet(qnet);
        try {
          for (const [name, params] of [["exact", exact], ["approx", approx]] as const) {
            const { value, ms: searchMs } = await timed(() => searchIndex(index, { params, qnet: prepared }));
            results[name].rankings.push(value.hits.map((h) => h.id));
            results[name].ms.push(searchMs);
            results[name].docsScored!.push(value.docsScored);
          }
        } finally {
          await prepared.release();
        }
        if ((i + 1) % 200 === 0) log(`Hypencoder: ${i + 1}/${qnets.length} queries`);
      }
      return results;
    };
    const known = await answer(sets.known);
    const tags = await answer(sets.tags);
    return {
      exact: { known: known.exact, tags: tags.exact },
      approx: { known: known.approx, tags: tags.approx },
      key: model.key,
      manifest: runtime.manifest,
      index,
      encodeMsPerQuery: mean(encodeMs),
    };
  } finally {
    await registry?.close();
    await runtime.close();
  }
}

function empty(): Answers {
  return { rankings: [], ms: [], docsScored: [] };
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

interface Metric {
  name: string;
  k: number;
  of: (ranking: string[], relevant: Set<string>, k: number) => number;
}

const KNOWN_METRICS: Metric[] = [
  { name: "MRR@10", k: 10, of: reciprocalRank },
  { name: "R@10", k: 10, of: recallAt },
  { name: "R@100", k: 100, of: recallAt },
];
const TAG_METRICS: Metric[] = [
  { name: "nDCG@10", k: 10, of: ndcgAt },
  { name: "P@10", k: 10, of: precisionAt },
  { name: "R@100", k: 100, of: recallAt },
];

/** The metric per query, or undefined when the system returned fewer than k hits by design (approx: k = 10). */
function perQuery(answers: Answers, queries: Query[], metric: Metric, deepest: number): number[] | undefined {
  if (metric.k > deepest) return undefined;
  return queries.map((q, i) => metric.of(answers.rankings[i]!, q.relevant, metric.k));
}

/**
 * The answers with only the documents in `keep` left in each ranking (a condensed list: documents
 * that are not judged are skipped, not counted as misses). The ranks they leave stay filled by the
 * next kept documents, so a system answering `deepest` documents can fill fewer positions.
 */
function condensed(answers: Answers, keep: Set<string>): Answers {
  return { ...answers, rankings: answers.rankings.map((r) => r.filter((id) => keep.has(id))) };
}

function table(title: string, queries: Query[], metrics: Metric[], systems: { name: string; answers: Answers; deepest: number }[]) {
  const rows = systems.map((s) => ({ ...s, scores: metrics.map((m) => perQuery(s.answers, queries, m, s.deepest)) }));
  out(`## ${title} (${queries.length} queries)`);
  out(["system".padEnd(26), ...metrics.map((m) => m.name.padStart(8)), "docs scored".padStart(13), "ms/query p50".padStart(13)].join(""));
  for (const row of rows) {
    const scored = row.answers.docsScored ? mean(row.answers.docsScored) : undefined;
    out(
      [
        row.name.padEnd(26),
        ...row.scores.map((s) => (s ? mean(s).toFixed(3) : "n/a").padStart(8)),
        (scored === undefined ? "(index)" : Math.round(scored).toLocaleString("en-US")).padStart(13),
        percentile(row.answers.ms, 50).toFixed(1).padStart(13),
      ].join(""),
    );
  }
  out("best per metric: " + metrics.map((m, j) => {
    const scored = rows.filter((r) => r.scores[j]);
    const best = Math.max(...scored.map((r) => mean(r.scores[j]!)));
    return `${m.name} ${scored.filter((r) => mean(r.scores[j]!) === best).map((r) => r.name).join(" = ")}`;
  }).join("; "));
  out();
  return rows;
}

/** Per query, how often system a scores above, equal to, below system b on a metric. */
function headToHead(a: number[], b: number[]): string {
  let wins = 0;
  let ties = 0;
  let losses = 0;
  a.forEach((x, i) => (x > b[i]! ? wins++ : x === b[i]! ? ties++ : losses++));
  return `${wins} better, ${ties} equal, ${losses} worse`;
}

// ---------------------------------------------------------------------------------------------

const corpus = await readDebianCorpus();
const docs = corpus.map((d) => ({ id: d.id, text: descriptionOnly(d) }));
const sets: QuerySets = { known: knownItemQueries(corpus, Number(args["known-items"]), Number(args.seed)), tags: await tagQueries(corpus) };
await mkdir(CACHE, { recursive: true });

const hyp = await hypencoder(args.model, docs, sets);
const docMaxLength = hyp.manifest.maxLength.document;
const bi = await biEncoder(args["bi-encoder"], docs, docMaxLength, sets);
const lexical = await bm25(docs, sets);

const splits = { train: 0, dev: 0, test: 0 };
for (const d of corpus) splits[d.metadata.split]++;
const relevantCounts = sets.tags.map((q) => q.relevant.size);
out(`corpus: ${corpus.length} packages (train ${splits.train}, dev ${splits.dev}, test ${splits.test}); collection: all of them, text = long description without the synopsis`);
out(`known-item queries: ${sets.known.length} synopses of test-split packages (seed ${args.seed}); tag queries: ${sets.tags.length} (${relevantCounts.length ? `${Math.min(...relevantCounts)}–${Math.max(...relevantCounts)}, median ${percentile(relevantCounts, 50)} relevant each` : ""})`);
out(`Hypencoder: ${args.model} (checkpoint ${hyp.key}, model ${hyp.manifest.modelId.slice(0, 12)}): BERT ${hyp.manifest.bert.numLayers}×${hyp.manifest.bert.hiddenSize}, q-net dims [${hyp.manifest.qnet.dims.join(",")}]; docs ≤ ${docMaxLength} tokens, queries ≤ ${QUERY_MAX_LENGTH}`);
out(`  index: build defaults (degree ${hyp.index.manifest.graph.degree}, ${hyp.index.manifest.dtype} embeddings, reachable ${hyp.index.manifest.graph.reachableFraction}); approx = SEARCH_DEFAULTS ${JSON.stringify({ ...SEARCH_DEFAULTS })}`);
out(`  query encoding ${hyp.encodeMsPerQuery.toFixed(1)} ms/query (batched), not in the ms/query column`);
out(`bi-encoder: ${args["bi-encoder"]} (checkpoint ${bi.key}): inner product of ${bi.pooling === "cls" ? "[CLS]" : "mean-pooled"} vectors, exhaustive; BM25: MiniSearch BM25+ (k1 1.2, b 0.7, δ 0.5), OR of the query's words`);
out();

const systemsFor = (set: "known" | "tags") => [
  { name: "BM25 (minisearch)", answers: lexical[set], deepest: DEEP },
  { name: "bi-encoder (exhaustive)", answers: bi[set], deepest: DEEP },
  { name: "Hypencoder exhaustive", answers: hyp.exact[set], deepest: DEEP },
  { name: "Hypencoder approx (default)", answers: hyp.approx[set], deepest: SEARCH_DEFAULTS.k },
];
const known = table("Known-item: synopsis → its package", sets.known, KNOWN_METRICS, systemsFor("known"));
const tags = table("Tag queries: relevant = carries every tag", sets.tags, TAG_METRICS, systemsFor("tags"));

// The trainer also learns from Debtag-derived queries of train-split packages, so the tag queries
// are judged a second time on test-split packages only, from each system's top 100.
const testIds = new Set(corpus.filter((d) => d.metadata.split === "test").map((d) => d.id));
const testJudged = sets.tags
  .map((q, i) => ({ q: { text: q.text, relevant: new Set([...q.relevant].filter((id) => testIds.has(id))) }, i }))
  .filter(({ q }) => q.relevant.size > 0);
const pick = (answers: Answers): Answers => {
  const kept = condensed(answers, testIds);
  return { rankings: testJudged.map(({ i }) => kept.rankings[i]!), ms: testJudged.map(({ i }) => kept.ms[i]!), ...(kept.docsScored ? { docsScored: testJudged.map(({ i }) => kept.docsScored![i]!) } : {}) };
};
table(
  "Tag queries judged on test-split packages only (other packages skipped in each top 100)",
  testJudged.map(({ q }) => q),
  TAG_METRICS.filter((m) => m.k <= 10),
  systemsFor("tags").filter((s) => s.deepest === DEEP).map((s) => ({ ...s, answers: pick(s.answers) })),
);

const [, knownBi, knownExact, knownApprox] = known;
const [, tagsBi, tagsExact] = tags;
const mrr = (row: (typeof known)[number]) => mean(row.scores[0]!);
const ndcg = (row: (typeof tags)[number]) => mean(row.scores[0]!);
out("## Goals (issue 13)");
out(`Hypencoder exhaustive vs bi-encoder, known-item MRR@10: ${mrr(knownExact!).toFixed(3)} vs ${mrr(knownBi!).toFixed(3)} (${mrr(knownExact!) > mrr(knownBi!) ? "met" : "NOT met"}); per query ${headToHead(knownExact!.scores[0]!, knownBi!.scores[0]!)}`);
out(`Hypencoder exhaustive vs bi-encoder, tag nDCG@10:      ${ndcg(tagsExact!).toFixed(3)} vs ${ndcg(tagsBi!).toFixed(3)} (${ndcg(tagsExact!) > ndcg(tagsBi!) ? "met" : "NOT met"}); per query ${headToHead(tagsExact!.scores[0]!, tagsBi!.scores[0]!)}`);
const loss = mrr(knownExact!) - mrr(knownApprox!);
out(`approx vs exhaustive, known-item MRR@10: ${mrr(knownApprox!).toFixed(3)} vs ${mrr(knownExact!).toFixed(3)}, loss ${loss.toFixed(4)} (goal ≤ 0.01: ${loss <= 0.01 ? "met" : "NOT met"}), scoring ${(100 * mean(knownApprox!.answers.docsScored!) / docs.length).toFixed(1)}% of the documents`);
