/**
 * Metadata filters end to end (issue 12), through the public API only, on real processes: two GPU
 * worker processes on the tiny model, the edge under `wrangler dev` (local D1), a fresh radosgw
 * bucket. An index declares fields at creation; a bulk build and then writes give it documents with
 * every field type, absent fields (missing and null) and undeclared fields; compaction runs in the
 * background with small thresholds, so the checks must hold whatever it has done.
 *
 * The test keeps its own model of the live documents (`live`) and compares the service with the
 * reference semantics (shared/filter/filter.ts matchesFilter): exact search with a filter returns
 * exactly the matching live documents with the CLI's scores (`hypencoder score`), and every hit
 * of an approximate search, in every answer format (JSON, msgpack, NDJSON, SSE and msgpack streams,
 * progress frames included), matches. Validation errors and the result cache are checked through
 * the real edge too.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiRequestError, PublicApi } from "../../infra/dev/public-api.ts";
import type { Hit } from "../../shared/api/worker-api.ts";
import { type Filter, matchesFilter, parseFilter } from "../../shared/filter/filter.ts";
import type { FieldSchema } from "../../shared/filter/schema.ts";
import { scoreOffline } from "../support/offline-score.ts";
import { note, ProductStack } from "../support/product-stack.ts";
import { type Format, formatRequest, readAnswer, type ReadAnswer } from "../support/search-answers.ts";

const TENANT = "filters";
const INDEX = "catalog";
const FIELDS: FieldSchema = { section: "string", year: "number", tags: "string[]", free: "boolean" };
/** Segments store float16 embeddings (the build and compaction default), which moves scores by up to ~1e-3 relative. */
const SCORE_RTOL = 5e-3;
const SECTIONS = ["utils", "devel", "games", "science"];
const TAGS = ["cli", "gui", "net", "math", "audio"];
const WORDS = ["otters", "sextants", "marmalade", "typhoons", "basalt", "accordions", "lichens", "comets"];
const QUERY = "otters and comets";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Doc = { id: string; text: string } & Record<string, unknown>;

/** Deterministic documents covering every type, absent declared fields (missing or null) and an undeclared field. */
function doc(n: number, salt = 0): Doc {
  const d: Doc = { id: `p${n}`, text: `package ${n} is about ${WORDS[(n + salt) % WORDS.length]} and ${WORDS[(n * 3 + salt) % WORDS.length]}`, origin: `o${n % 5}` };
  if (n % 13 !== 0) d.section = SECTIONS[(n + salt) % SECTIONS.length];
  else d.section = null;
  if (n % 11 !== 0) d.year = 1990 + ((n * 7 + salt) % 35);
  if (n % 9 !== 0) d.tags = TAGS.filter((_, i) => (n + i + salt) % 3 === 0);
  if (n % 7 !== 0) d.free = (n + salt) % 2 === 0;
  return d;
}

/** Filters over every op, combinator and the absent-field rule (each is parsed as the edge parses it). */
const FILTERS: Array<[string, unknown]> = [
  ["eq string", { field: "section", op: "eq", value: "utils" }],
  ["ne string (absent matches)", { field: "section", op: "ne", value: "utils" }],
  ["in string", { field: "section", op: "in", value: ["devel", "games"] }],
  ["nin string (absent matches)", { field: "section", op: "nin", value: ["devel", "games"] }],
  ["gt number", { field: "year", op: "gt", value: 2010 }],
  ["gte/lt range", { and: [{ field: "year", op: "gte", value: 1995 }, { field: "year", op: "lt", value: 2000 }] }],
  ["lte number", { field: "year", op: "lte", value: 1992 }],
  ["eq number", { field: "year", op: "eq", value: 2004 }],
  ["contains string[]", { field: "tags", op: "contains", value: "net" }],
  ["in string[] (any of)", { field: "tags", op: "in", value: ["math", "audio"] }],
  ["nin string[] (none of)", { field: "tags", op: "nin", value: ["cli"] }],
  ["eq boolean", { field: "free", op: "eq", value: true }],
  ["exists true", { field: "year", op: "exists", value: true }],
  ["exists false", { field: "tags", op: "exists", value: false }],
  ["not over an absent field", { not: { field: "year", op: "gt", value: 2000 } }],
  ["or of and", { or: [{ and: [{ field: "section", op: "eq", value: "science" }, { field: "free", op: "eq", value: false }] }, { field: "tags", op: "contains", value: "gui" }] }],
  ["very selective", { and: [{ field: "section", op: "eq", value: "games" }, { field: "year", op: "gte", value: 2005 }, { field: "tags", op: "contains", value: "gui" }] }],
  ["matches nothing", { field: "section", op: "eq", value: "nowhere" }],
];

describe("metadata filters end to end (real processes, public API)", () => {
  let product: ProductStack;
  let api: PublicApi;
  /** What the index must hold after every acknowledged write. */
  const live = new Map<string, Doc>();
  /** Offline scores of QUERY for every document ever live (a score depends only on the document's text). */
  const offline = new Map<string, number>();
  const parsed = (filter: unknown): Filter => parseFilter(filter, FIELDS);
  const matching = (filter: unknown) => [...live.values()].filter((d) => matchesFilter(parsed(filter), d));
  const search = async (body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<ReadAnswer> => readAnswer(await api.search(INDEX, body, headers));

  const upsert = async (docs: Doc[], deletes: string[] = []) => {
    await api.write(INDEX, { ...(docs.length ? { upsert: docs } : {}), ...(deletes.length ? { delete: deletes } : {}) });
    for (const id of deletes) live.delete(id);
    for (const d of docs) live.set(d.id, d);
  };

  async function scoreNewTexts(label: string): Promise<void> {
    const docs = [...live.values()].filter((d) => !offline.has(`${d.id}\u0000${d.text}`)).map((d) => ({ id: d.id, text: d.text }));
    if (docs.length === 0) return;
    const scores = (await scoreOffline(product.modelDir, product.dir, [{ id: "q", text: QUERY }], docs, label)).get("q")!;
    for (const d of docs) offline.set(`${d.id}\u0000${d.text}`, scores.get(d.id)!);
  }

  /** Exact search with each filter equals brute-force scoring of exactly the matching live documents. */
  async function expectExactFilteredEqualsReference(label: string): Promise<void> {
    await scoreNewTexts(label);
    for (const [name, filter] of FILTERS) {
      const want = matching(filter);
      const answer = await search({ query: QUERY, k: 1000, mode: "exact", filter });
      expect(answer.status, `${label}, ${name}: ${JSON.stringify(answer.error)}`).toBe(200);
      const hits = answer.result!.hits;
      expect(answer.result!.partial, `${label}, ${name}`).toBe(false);
      expect(new Set(hits.map((h) => h.id)), `${label}, ${name}`).toEqual(new Set(want.map((d) => d.id)));
      expect(hits, `${label}, ${name}`).toHaveLength(want.length);
      for (let i = 1; i < hits.length; i++) expect(hits[i - 1]!.score).toBeGreaterThanOrEqual(hits[i]!.score);
      for (const hit of hits) {
        const own = offline.get(`${hit.id}\u0000${live.get(hit.id)!.text}`)!;
        expect(Math.abs(hit.score - own) <= SCORE_RTOL * Math.max(Math.abs(own), Math.abs(hit.score)), `${label}, ${name}: ${hit.id} scored ${hit.score} online, ${own} offline`).toBe(true);
      }
      if (want.length > 0) expect(answer.result!.stats?.plan, `${label}, ${name}`).toMatch(/^filtered-(walk|exhaustive)$/);
    }
  }

  /** Every hit of every frame (progress and result) is a live document matching the filter. */
  function expectEveryHitMatches(answer: ReadAnswer, filter: unknown, label: string): void {
    expect(answer.status, `${label}: ${JSON.stringify(answer.error)}`).toBe(200);
    expect(answer.result, label).toBeDefined();
    const hits = answer.frames.flatMap((f) => (f.type === "progress" || f.type === "result" ? (f.hits as Hit[]) : []));
    for (const hit of hits) {
      const d = live.get(hit.id);
      expect(d, `${label}: ${hit.id} is not live`).toBeDefined();
      expect(matchesFilter(parsed(filter), d!), `${label}: ${hit.id} ${JSON.stringify(d)} does not match`).toBe(true);
    }
  }

  beforeAll(async () => {
    product = await ProductStack.start({
      prefix: "e2e-filters",
      workers: 2,
      edgeVars: { WORKER_TIMEOUT_MS: "15000", RATE_LIMIT_PER_MINUTE: "0", COMPACT_TAIL_DOCS: "20", COMPACT_TAIL_AGE_SECONDS: "4", GC_GRACE_SECONDS: "2", GC_INTERVAL_SECONDS: "10" },
      workerEnv: { DEVICE: "cpu" },
    });
    const admin = product.admin();
    await admin.createTenant(TENANT);
    api = product.tenant(await admin.createKey(TENANT, ["search", "manage"]));
  }, 240_000);

  afterAll(async () => {
    await product?.close();
  });

  it("1. an index declares its fields at creation; GET shows them in the same form; bad schemas are 400", async () => {
    await api.createIndex(INDEX, FIELDS);
    expect((await api.index(INDEX)).fields).toEqual(FIELDS);
    const bad = await api.request("POST", "/v1/indexes", { id: "bad", fields: { year: "int" } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/field "year": type must be one of/);
  });

  it("2. a bulk build stores the fields; a document of the wrong type fails the build naming the line and field", async () => {
    const bad = [doc(1), { ...doc(2), year: "1999" }];
    const badUpload = await api.upload(INDEX, [{ name: "bad.jsonl", body: new TextEncoder().encode(bad.map((d) => JSON.stringify(d)).join("\n") + "\n") }]);
    const failed = await api.waitForBuild(INDEX, (await api.startBuild(INDEX, badUpload, { storeFields: ["text"] })).id, { timeoutMs: 120_000 });
    expect(failed.state).toBe("failed");
    expect(failed.error?.message).toMatch(/line 2/);
    expect(failed.error?.message).toMatch(/year/);

    const built = Array.from({ length: 80 }, (_, i) => doc(i));
    const upload = await api.upload(INDEX, [{ name: "docs.jsonl", body: new TextEncoder().encode(built.map((d) => JSON.stringify(d)).join("\n") + "\n") }]);
    const done = await api.waitForBuild(INDEX, (await api.startBuild(INDEX, upload, { degree: 8, storeFields: ["text", "section", "year", "tags", "free", "origin"] })).id, { timeoutMs: 120_000 });
    expect(done.state, JSON.stringify(done.error)).toBe("succeeded");
    for (const d of built) live.set(d.id, d);
    await expectExactFilteredEqualsReference("after the bulk build");
  });

  it("3. writes are checked against the schema (400 naming document and field); accepted writes are filtered at once", async () => {
    const refused = await api.write(INDEX, { upsert: [doc(200), { ...doc(201), tags: "cli" }] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiRequestError);
    expect((refused as ApiRequestError).status).toBe(400);
    expect((refused as ApiRequestError).message).toMatch(/document "p201".*field "tags" is declared string\[\]/);
    // New documents, replacements that change field values (and drop one), and deletes.
    await upsert([...Array.from({ length: 12 }, (_, i) => doc(100 + i)), doc(3, 1), doc(4, 2), { ...doc(5, 1), year: null }], ["p6", "p7", "p8"]);
    await expectExactFilteredEqualsReference("after writes");
  });

  it("4. approximate search: every hit matches, in every answer format, progress frames included", async () => {
    const formats: Format[] = ["json", "msgpack", "ndjson", "sse"];
    for (const [name, filter] of FILTERS) {
      const want = matching(filter).length;
      for (const format of formats) {
        const { headers, stream } = formatRequest(format);
        const answer = await search({ query: QUERY, k: 10, filter, stream }, headers);
        expectEveryHitMatches(answer, filter, `${name} (${format})`);
        if (want > 0) expect(answer.result!.hits.length, `${name} (${format})`).toBeGreaterThan(0);
      }
      // A streamed msgpack answer too.
      const streamedMsgpack = await search({ query: QUERY, k: 10, filter, stream: true }, { accept: "application/msgpack" });
      expectEveryHitMatches(streamedMsgpack, filter, `${name} (msgpack stream)`);
    }
  });

  it("5. GET takes filter=<url-encoded JSON>; invalid filters are 400 naming the path and field", async () => {
    const filter = { field: "section", op: "in", value: ["utils", "science"] };
    const answer = await readAnswer(await api.request("GET", `/v1/indexes/${INDEX}/search?q=${encodeURIComponent(QUERY)}&k=1000&mode=exact&filter=${encodeURIComponent(JSON.stringify(filter))}`));
    expectEveryHitMatches(answer, filter, "GET");
    expect(answer.result!.hits).toHaveLength(matching(filter).length);
    const refusals: Array<[unknown, RegExp]> = [
      [{ field: "origin", op: "eq", value: "o1" }, /filter\.field: field "origin" is not declared for filtering/],
      [{ field: "year", op: "gt", value: "2000" }, /filter\.value: .*"year".*compares numbers/],
      [{ and: [{ field: "tags", op: "eq", value: "cli" }] }, /filter\.and\[0\]\.op: op "eq" does not apply to field "tags"/],
      [{ or: Array.from({ length: 65 }, (_, i) => ({ field: "year", op: "eq", value: i })) }, /at most 64 conditions/],
    ];
    for (const [bad, message] of refusals) {
      const refused = await search({ query: QUERY, filter: bad });
      expect(refused.status).toBe(400);
      expect(refused.error?.message).toMatch(message);
    }
    const notJson = await api.request("GET", `/v1/indexes/${INDEX}/search?q=x&filter=${encodeURIComponent("{section")}`);
    expect(notJson.status).toBe(400);
  });

  it("6. equivalent orderings of one and list share one cache entry", async () => {
    const a = { field: "section", op: "ne", value: "games" };
    const b = { field: "year", op: "gte", value: 2000 };
    const c = { field: "tags", op: "in", value: ["net", "cli"] };
    const query = "cache the filtered otters";
    await search({ query, k: 20, mode: "exact", filter: { and: [a, b, c] } });
    let cached: ReadAnswer | undefined;
    for (let i = 0; i < 20 && cached?.xCache !== "HIT"; i++) {
      await sleep(100);
      cached = await search({ query, k: 20, mode: "exact", filter: { and: [c, a, { ...b }] } });
    }
    expect(cached?.xCache).toBe("HIT");
    expect((await search({ query, k: 20, mode: "exact", filter: { and: [b, { ...c, value: ["cli", "net"] }, a] } })).xCache).toBe("HIT");
    expect((await search({ query, k: 20, mode: "exact", filter: { or: [a, b, c] } })).xCache).toBe("MISS");
  });

  it("7. after compaction folds the writes into a segment, filtered search still equals the reference", async () => {
    await upsert(Array.from({ length: 25 }, (_, i) => doc(300 + i, 3)), ["p10"]);
    const deadline = Date.now() + 120_000;
    let detail = await api.index(INDEX);
    while (!(detail.pendingDocs === 0 && detail.compactedSeq === detail.headSeq) && Date.now() < deadline) {
      await sleep(1000);
      detail = await api.index(INDEX);
    }
    note(`after compaction: ${JSON.stringify(detail)}`);
    expect(detail).toMatchObject({ pendingDocs: 0, docCount: live.size });
    await expectExactFilteredEqualsReference("after compaction");
    for (const [name, filter] of FILTERS) expectEveryHitMatches(await search({ query: QUERY, k: 10, filter }), filter, `${name} after compaction`);
  });
});
