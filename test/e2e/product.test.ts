/**
 * The product end to end, as its users see it: one real stack (three GPU worker processes on the
 * tiny random model, the edge under `wrangler dev` with local D1, a fresh radosgw bucket) driven only
 * through the public HTTP API — the operator API, tenant keys, presigned uploads with plain fetch,
 * builds, and search in every response format — plus the `hypencoder score` CLI as the offline
 * reference. Processes are killed and restarted to check failure handling and persistence.
 *
 * The steps share state and run in order: tenants → upload → build v1 → search (vs. the CLI, and
 * across formats) → isolation → v2 flip → a worker killed mid-build and mid-search → whole-stack
 * restart. Output is quiet unless INTEGRATION_VERBOSE=1 (which also prints measured recall).
 *
 * The only non-public reads are for choosing which process to kill: the build's worker is the
 * first rendezvous owner of `<tenant>/<index>/builds` (what the edge dispatches to), and a search
 * victim is a first owner of one of the active version's shards (from the manifest in S3).
 */
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ownersFor, shardPlacementKey } from "../../edge/src/routing/rendezvous.ts";
import { type BuildState, PublicApi } from "../../infra/dev/public-api.ts";
import { manifestKey } from "../../shared/index/keys.ts";
import { scoreOffline } from "../support/offline-score.ts";
import { note, ProductStack } from "../support/product-stack.ts";
import { objectExists, s3TestClient } from "../support/s3.ts";
import { type Format, formatRequest, type ReadAnswer, readAnswer, type SearchResult } from "../support/search-answers.ts";

const TENANT_A = "tenant-a";
const TENANT_B = "tenant-b";
const INDEX = "docs";
const K = 10;
/** Relative tolerance for float32 scores computed by two runs of the same ONNX graphs (batching differs). */
const SCORE_RTOL = 1e-4;

const WORDS = ["zebras", "quantum", "umbrellas", "graphs", "rain", "coffee", "rivers", "violins", "glaciers", "lanterns", "copper", "meadows"];
type Doc = { id: string; text: string };
const corpus = (prefix: string, n: number, salt: number): Doc[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i}`,
    text: `${prefix} document ${i} about ${WORDS[(i + salt) % WORDS.length]} and ${WORDS[(i * 7 + 3 + salt) % WORDS.length]}, number ${i * 13 + salt}`,
  }));
/** v1: the corpus the CLI scores (and approx recall is measured on). v2 and v3: different documents. */
const DOCS_V1 = corpus("a", 1500, 0);
const DOCS_V2 = corpus("b", 600, 5);
const DOCS_V3 = corpus("c", 1500, 9);
const QUERIES: Doc[] = ["zebras in the rain", "quantum graphs", "coffee by the rivers", "violins and lanterns", "copper glaciers"].map((text, i) => ({ id: `q${i}`, text }));
/**
 * float32 embeddings, so exact search reproduces the CLI's float32 scores (float16, the default, would
 * round every embedding to 11 significant bits and move scores by ~1e-3 relative: more than the gaps
 * between this random model's neighbouring scores, so even the order could differ). Several shards
 * (~300 KB each of ~900 KB) so that a search fans out over the workers; the default degree (100).
 */
const BUILD_OPTIONS = { dtype: "float32", shardBytes: 320_000 } as const;

const jsonl = (docs: Doc[]) => new TextEncoder().encode(docs.map((d) => JSON.stringify(d)).join("\n") + "\n");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Hypencoder Search end to end (real processes, public API only)", () => {
  let product: ProductStack;
  let admin: PublicApi;
  let a: PublicApi; // tenant A, search + manage
  let aSearchOnly: PublicApi;
  let b: PublicApi; // tenant B, search + manage
  let revokedKey: string;
  let revokedKeyId: string;
  /** query id → doc id → score, from `hypencoder score` over DOCS_V1. */
  let offline: Promise<Map<string, Map<string, number>>>;
  let uploadV1 = "";
  let buildV1: BuildState;

  beforeAll(async () => {
    product = await ProductStack.start({
      prefix: "e2e-product",
      workers: 3,
      edgeVars: { WORKER_TIMEOUT_MS: "10000", RATE_LIMIT_PER_MINUTE: "0" },
      workerEnv: { DEVICE: "cpu" },
    });
    // The offline reference runs while the tests drive the stack; awaited where it is compared.
    offline = scoreOffline(product.modelDir, product.dir, QUERIES, DOCS_V1);
    offline.catch(() => {}); // reported by the test that awaits it
    admin = product.admin();
  }, 240_000);

  afterAll(async () => {
    await product?.close();
  });

  const search = (api: PublicApi, body: Record<string, unknown>, format: Format = "json") => {
    const { headers, stream } = formatRequest(format);
    return api.search(INDEX, { ...body, ...(stream ? { stream: true } : {}) }, headers).then(readAnswer);
  };
  const exact = (api: PublicApi, query: string, format: Format = "json") => search(api, { query, k: K, mode: "exact" }, format);
  const status = (api: PublicApi, method: string, path: string, body?: unknown) => api.request(method, path, body).then(async (r) => ({ status: r.status, body: (await r.json().catch(() => null)) as { error?: { code: string } } | null }));

  async function buildAndWait(api: PublicApi, uploadId: string): Promise<{ build: BuildState; seen: BuildState[] }> {
    const started = await api.startBuild(INDEX, uploadId, BUILD_OPTIONS);
    const seen: BuildState[] = [started];
    const build = await api.waitForBuild(INDEX, started.id, { timeoutMs: 120_000, onProgress: (s) => seen.push(s) });
    return { build, seen };
  }

  it("1. the operator creates tenants A and B with keys; A creates an index", async () => {
    await admin.createTenant(TENANT_A, "Tenant A");
    await admin.createTenant(TENANT_B, "Tenant B");
    a = product.tenant(await admin.createKey(TENANT_A, ["search", "manage"]));
    aSearchOnly = product.tenant(await admin.createKey(TENANT_A, ["search"]));
    b = product.tenant(await admin.createKey(TENANT_B, ["search", "manage"]));
    const revocable = (await admin.json("POST", `/v1/admin/tenants/${TENANT_A}/keys`, { scopes: ["search", "manage"], name: "to be revoked" })) as { id: string; key: string };
    revokedKey = revocable.key;
    revokedKeyId = revocable.id;

    await a.createIndex(INDEX);
    const list = (await a.json("GET", "/v1/indexes")) as { indexes: Array<{ id: string; status: string; activeVersion: number | null }> };
    expect(list.indexes).toEqual([expect.objectContaining({ id: INDEX, status: "empty", activeVersion: null })]);
    // Nothing to search yet.
    expect((await exact(a, "anything")).status).toBe(409);
  });

  it("2. A uploads a JSONL file through presigned URLs with plain fetch", async () => {
    uploadV1 = await a.upload(INDEX, [{ name: "docs.jsonl", body: jsonl(DOCS_V1) }]);
    expect(uploadV1).toMatch(/^u[0-9a-f]{24}$/);
  });

  it("3. A builds version 1, watching its progress, and searches it", async () => {
    const { build, seen } = await buildAndWait(a, uploadV1);
    buildV1 = build;
    expect(build).toMatchObject({ state: "succeeded", version: 1 });
    expect(build.progress).toMatchObject({ docsRead: DOCS_V1.length, docsEncoded: DOCS_V1.length, docsTotal: DOCS_V1.length });
    // Progress was observed while it ran: polls (not just the 202) saw it running, and the counts only grew.
    const polls = seen.slice(1);
    expect(polls.some((s) => ["reading", "encoding", "graph", "writing"].includes(s.state))).toBe(true);
    const encoded = polls.map((s) => s.progress?.docsEncoded ?? 0);
    expect(encoded).toEqual([...encoded].sort((x, y) => x - y));
    note(`v1 build states seen: ${seen.map((s) => s.state).join(" → ")}`);

    const index = (await a.json("GET", `/v1/indexes/${INDEX}`)) as { activeVersion: number; docCount: number; status: string };
    expect(index).toMatchObject({ activeVersion: 1, docCount: DOCS_V1.length, status: "ready" });
    const answer = await exact(a, QUERIES[0]!.text);
    expect(answer.status).toBe(200);
    expect(answer.result).toMatchObject({ version: 1, partial: false, missingShards: [] });
    expect(answer.result!.hits).toHaveLength(K);
    expect(answer.result!.stats).toMatchObject({ docsScored: DOCS_V1.length });
    expect(answer.result!.stats!.shardsSearched).toBeGreaterThan(1);
  }, 150_000);

  it("4. exact hits equal `hypencoder score`; approx overlaps them; every format gives the same answer", async () => {
    const reference = await offline;
    const exactHits = new Map<string, SearchResult["hits"]>();
    let sameOrder = 0;
    for (const q of QUERIES) {
      const answer = await exact(a, q.text);
      expect(answer.status).toBe(200);
      expect(answer.result!.partial).toBe(false);
      if (expectSameTopK(answer.result!.hits, reference.get(q.id)!, K, q.id)) sameOrder++;
      exactHits.set(q.id, answer.result!.hits);
    }

    note(`exact vs hypencoder score: ${sameOrder} of ${QUERIES.length} queries with the very same ids in the same order`);

    // Approx with the default parameters: entryPoints (10,000) exceeds the corpus, so this is
    // effectively exhaustive; recall must be ≥ 0.9.
    const { recall: defaultRecall } = await meanRecall((q) => search(a, { query: q.text, k: K }));
    // A small entry set and frontier make the search walk the kNN graph instead.
    const { recall: graphRecall, scored } = await meanRecall((q) => search(a, { query: q.text, k: K, mode: "approx", entryPoints: 100, ncandidates: 16 }));
    note(`approx recall@${K} vs exact: default params ${defaultRecall.toFixed(3)}; entryPoints 100 / ncandidates 16: ${graphRecall.toFixed(3)}, scoring ${scored.toFixed(0)} of ${DOCS_V1.length} documents on average`);
    expect(defaultRecall).toBeGreaterThanOrEqual(0.9);
    expect(graphRecall).toBeGreaterThanOrEqual(0.8);
    // …and it did not score every document (with the published degree, 100, on ~500-document
    // shards a 16-candidate frontier still reaches most of a shard in one step).
    expect(scored).toBeLessThan(DOCS_V1.length);

    // The same search in every format (each a separate fan-out: JSON and msgpack have separate cache
    // entries and streams are never cached), and as a GET with a query string.
    for (const q of QUERIES.slice(0, 2)) {
      const params = { query: q.text, k: K, mode: "approx", entryPoints: 100, ncandidates: 16 };
      const answers: Record<string, ReadAnswer> = {};
      for (const format of ["json", "msgpack", "ndjson", "sse"] as const) answers[format] = await search(a, params, format);
      const get = await a.request("GET", `/v1/indexes/${INDEX}/search?q=${encodeURIComponent(q.text)}&k=${K}&mode=approx&entryPoints=100&ncandidates=16`);
      answers.get = await readAnswer(get);
      const expected = answers.json!.result!;
      for (const [format, answer] of Object.entries(answers)) {
        expect(answer.status, format).toBe(200);
        expect(answer.headerVersion, format).toBe(1);
        expect(answer.result, format).toBeDefined();
        // The body names the version too, in every format (msgpack: decoded with shared/api/frames.ts).
        expect(answer.result!.version, format).toBe(1);
        expect(stripStats(answer.result!), format).toEqual(stripStats(expected));
      }
      expect(answers.msgpack!.contentType).toMatch(/^application\/msgpack/);
      expect(answers.ndjson!.contentType).toMatch(/^application\/x-ndjson/);
      expect(answers.sse!.contentType).toMatch(/^text\/event-stream/);
      // Streams end with the result frame, after any progress frames.
      for (const format of ["ndjson", "sse"] as const) {
        expect(answers[format]!.frames.slice(0, -1).every((f) => f.type === "progress"), format).toBe(true);
      }
    }
    // A streamed exact search equals the whole one too.
    const streamed = await exact(a, QUERIES[2]!.text, "ndjson");
    expect(streamed.result!.hits).toEqual(exactHits.get(QUERIES[2]!.id));

    /** Mean recall@K against the exact hits, and the mean number of documents scored. */
    async function meanRecall(run: (q: Doc) => Promise<ReadAnswer>): Promise<{ recall: number; scored: number }> {
      let recall = 0;
      let scored = 0;
      for (const q of QUERIES) {
        const answer = await run(q);
        expect(answer.status).toBe(200);
        const truth = new Set(exactHits.get(q.id)!.map((h) => h.id));
        recall += answer.result!.hits.filter((h) => truth.has(h.id)).length / K;
        scored += answer.result!.stats!.docsScored as number;
      }
      return { recall: recall / QUERIES.length, scored: scored / QUERIES.length };
    }
  }, 120_000);

  it("5. tenant B cannot see or touch A's index; scopes and revocation are enforced", async () => {
    const indexPath = `/v1/indexes/${INDEX}`;
    // B asks for A's index by its id: it does not exist for B.
    expect((await status(b, "GET", indexPath)).status).toBe(404);
    expect((await exact(b, QUERIES[0]!.text)).status).toBe(404);
    expect((await b.request("GET", `${indexPath}/search?q=zebras`)).status).toBe(404);
    expect((await status(b, "POST", `${indexPath}/uploads`, { files: [{ name: "x.jsonl", bytes: 10 }] })).status).toBe(404);
    expect((await status(b, "POST", `${indexPath}/builds`, { uploadId: uploadV1 })).status).toBe(404);
    expect((await status(b, "GET", `${indexPath}/builds/${buildV1.id}`)).status).toBe(404);
    expect((await status(b, "DELETE", indexPath)).status).toBe(404);
    expect(((await b.json("GET", "/v1/indexes")) as { indexes: unknown[] }).indexes).toEqual([]);
    // B's own index of the same name is a different, empty index.
    await b.createIndex(INDEX);
    expect((await exact(b, QUERIES[0]!.text)).status).toBe(409);
    // A's index is untouched.
    expect(((await a.json("GET", indexPath)) as { activeVersion: number }).activeVersion).toBe(1);

    // A search-only key searches but cannot manage.
    expect((await exact(aSearchOnly, QUERIES[0]!.text)).status).toBe(200);
    expect((await status(aSearchOnly, "POST", "/v1/indexes", { id: "other" })).status).toBe(403);
    expect((await status(aSearchOnly, "POST", `${indexPath}/uploads`, { files: [{ name: "x.jsonl", bytes: 10 }] })).status).toBe(403);
    const forbidden = await status(aSearchOnly, "POST", `${indexPath}/builds`, { uploadId: uploadV1 });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body?.error?.code).toBe("forbidden");
    expect((await status(aSearchOnly, "DELETE", indexPath)).status).toBe(403);
    // A tenant key is not an operator token.
    expect((await status(a, "POST", "/v1/admin/tenants", { id: "sneaky", name: "x" })).status).toBeGreaterThanOrEqual(401);

    // A revoked key stops working at once.
    const revocable = product.tenant(revokedKey);
    expect((await exact(revocable, QUERIES[0]!.text)).status).toBe(200);
    await admin.json("DELETE", `/v1/admin/tenants/${TENANT_A}/keys/${revokedKeyId}`);
    const revoked = await exact(revocable, QUERIES[0]!.text);
    expect(revoked.status).toBe(401);
    expect(revoked.error?.code).toBe("unauthorized");
    expect((await status(revocable, "GET", indexPath)).status).toBe(401);
    // No key at all.
    expect((await fetch(`${product.edgeUrl}${indexPath}/search?q=zebras`)).status).toBe(401);
  }, 60_000);

  it("6. a second build creates version 2; searches flip atomically and the v1 cache entry is not served", async () => {
    const cachedQuery = { query: "umbrellas over the meadows", k: K, mode: "exact" };
    // Cache a v1 answer.
    const first = await search(a, cachedQuery);
    expect(first).toMatchObject({ status: 200, xCache: "MISS" });
    expect(first.result!.version).toBe(1);
    const v1Cached = await waitForCacheHit(() => search(a, cachedQuery));
    expect(v1Cached.result!.version).toBe(1);
    expect(v1Cached.result!.hits).toEqual(first.result!.hits);

    const upload = await a.upload(INDEX, [{ name: "docs-v2.jsonl", body: jsonl(DOCS_V2) }]);
    const started = await a.startBuild(INDEX, upload, BUILD_OPTIONS);
    expect(started.version).toBe(2);

    // Search continuously while the build runs and its completion flips the active version.
    type Probe = { answer: ReadAnswer; afterFlip: boolean; cached: boolean };
    const probes: Probe[] = [];
    let flipped = false;
    let stop = false;
    const prober = (async () => {
      for (let i = 0; !stop || probes.filter((p) => p.afterFlip).length < 3; i++) {
        const afterFlip = flipped;
        // Alternate fresh queries (fan-out to the workers) with the cached one.
        const cached = i % 2 === 1;
        const body = cached ? cachedQuery : { query: `flip probe ${i}`, k: K, mode: "exact" };
        probes.push({ answer: await search(a, body), afterFlip, cached });
      }
    })();
    const build = await a.waitForBuild(INDEX, started.id, { timeoutMs: 120_000 });
    flipped = true;
    stop = true;
    await prober;
    expect(build).toMatchObject({ state: "succeeded", version: 2 });

    const v1Ids = new Set(DOCS_V1.map((d) => d.id));
    const v2Ids = new Set(DOCS_V2.map((d) => d.id));
    let sawV2 = false;
    for (const { answer, afterFlip } of probes) {
      expect(answer.status).toBe(200);
      const { version, hits, partial } = answer.result!;
      expect(partial).toBe(false);
      expect([1, 2]).toContain(version);
      expect(answer.headerVersion).toBe(version);
      // Never a mix: every hit comes from the version the answer reports.
      const ids = version === 1 ? v1Ids : v2Ids;
      expect(hits.every((h) => ids.has(h.id))).toBe(true);
      // Monotonic: once v2 was served, v1 never again; after the flip, only v2.
      if (sawV2 || afterFlip) expect(version).toBe(2);
      sawV2 ||= version === 2;
    }
    note(`flip: ${probes.length} searches during the build, ${probes.filter((p) => p.answer.result?.version === 1).length} on v1`);
    expect(probes.some((p) => p.answer.result!.version === 1)).toBe(true);

    // Before the flip the cached query was served from the v1 entry; the first time it was asked
    // on v2 it was a miss with v2 hits (the prober asked it after the flip at least once).
    expect(probes.some((p) => p.cached && p.answer.result!.version === 1 && p.answer.xCache === "HIT")).toBe(true);
    const firstV2 = probes.find((p) => p.cached && p.answer.result!.version === 2);
    expect(firstV2).toBeDefined();
    expect(firstV2!.answer.xCache).toBe("MISS");
    expect(firstV2!.answer.result!.hits.every((h) => v2Ids.has(h.id))).toBe(true);
    // And from then on it is v2's own entry.
    const after = await waitForCacheHit(() => search(a, cachedQuery));
    expect(after.result!.version).toBe(2);
    expect(after.result!.hits).toEqual(firstV2!.answer.result!.hits);
    const index = (await a.json("GET", `/v1/indexes/${INDEX}`)) as { activeVersion: number; docCount: number };
    expect(index).toMatchObject({ activeVersion: 2, docCount: DOCS_V2.length });
  }, 150_000);

  it("7a. a GPU worker killed during a build: reported cleanly, nothing half-built is visible, a retry succeeds", async () => {
    const upload = await a.upload(INDEX, [{ name: "docs-v3.jsonl", body: jsonl(DOCS_V3) }]);
    // The edge dispatches a build to the first rendezvous owner of the index's build key.
    const victim = victimFor(`${TENANT_A}/${INDEX}/builds`);
    const started = await a.startBuild(INDEX, upload, BUILD_OPTIONS);
    expect(started.version).toBe(3);
    const running = await a.build(INDEX, started.id);
    expect(["queued", "reading", "encoding", "graph", "writing"]).toContain(running.state);
    product.workers[victim]!.process.kill("SIGKILL");
    await product.workers[victim]!.process.exited;

    // The edge answers at once: the build is not finished and its worker is unreachable.
    const t0 = Date.now();
    const polled = (await a.build(INDEX, started.id)) as BuildState & { workerReachable?: boolean };
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(polled.state).not.toBe("succeeded");
    expect(polled.workerReachable).toBe(false);
    // Nothing of version 3 is visible: v2 stays active, and searches still answer (the other workers
    // take over the dead one's shards).
    let index = (await a.json("GET", `/v1/indexes/${INDEX}`)) as { activeVersion: number; versions: Array<{ version: number; state: string }> };
    expect(index.activeVersion).toBe(2);
    expect(index.versions.find((v) => v.version === 3)?.state).toBe("building");
    const during = await exact(a, "searching while a build died");
    expect(during.status).toBe(200);
    expect(during.result).toMatchObject({ version: 2, partial: false });
    // The running build still holds the index: a second build is refused, not started alongside.
    expect((await status(a, "POST", `/v1/indexes/${INDEX}/builds`, { uploadId: upload })).status).toBe(409);

    // The worker comes back (same port, fresh process): the build is reported lost, with an error.
    await product.restartWorker(victim);
    const failed = await a.build(INDEX, started.id);
    expect(failed.state).toBe("failed");
    expect(failed.error).toMatchObject({ code: "build_lost" });
    expect(failed.error!.message.length).toBeGreaterThan(0);
    index = (await a.json("GET", `/v1/indexes/${INDEX}`)) as typeof index;
    expect(index.activeVersion).toBe(2);
    expect(index.versions.find((v) => v.version === 3)?.state).toBe("failed");
    // No manifest was published for the dead build (a version exists only once its manifest does).
    expect(await objectExists(product.s3.bucket, manifestKey(TENANT_A, INDEX, 3))).toBe(false);
    expect((await exact(a, "after the failed build")).result!.version).toBe(2);

    // A retry succeeds and becomes the active version.
    const retry = await buildAndWait(a, upload);
    expect(retry.build).toMatchObject({ state: "succeeded", version: 4 });
    const v3Ids = new Set(DOCS_V3.map((d) => d.id));
    const answer = await exact(a, QUERIES[0]!.text);
    expect(answer.result).toMatchObject({ version: 4, partial: false });
    expect(answer.result!.hits.every((h) => v3Ids.has(h.id))).toBe(true);
  }, 150_000);

  it("7b. a GPU worker killed during a search: a clean answer, no hang, and a retry succeeds", async () => {
    // A worker that is the first owner of at least one shard of the active version must serve part of every search.
    const shards = await activeShards(4);
    const victim = product.workers.findIndex((w) => shards.some((s) => ownersFor(shardPlacementKey(TENANT_A, INDEX, 4, s), product.workers.map((x) => x.url))[0] === w.url));
    expect(victim).toBeGreaterThanOrEqual(0);
    const worker = product.workers[victim]!;
    // Warm every shard on its owner first, so the timing below is about the kill, not cold loads.
    expect((await exact(a, "warm up the shards")).result!.partial).toBe(false);

    // Freeze the worker so both searches are certainly waiting on it, then kill it mid-request.
    worker.process.kill("SIGSTOP");
    const t0 = Date.now();
    const queries = ["killed mid search", "killed mid stream"];
    const whole = exact(a, queries[0]!);
    const streamed = exact(a, queries[1]!, "ndjson");
    const settled = await Promise.race([Promise.allSettled([whole, streamed]).then(() => true), sleep(1_000).then(() => false)]);
    expect(settled).toBe(false); // both are in flight on the frozen worker
    worker.process.kill("SIGKILL");
    await worker.process.exited;
    const [wholeAnswer, streamedAnswer] = await Promise.all([whole, streamed]);
    const elapsed = Date.now() - t0;
    note(`searches during the kill: ${elapsed} ms; whole ${wholeAnswer.status} partial=${wholeAnswer.result?.partial}, streamed ${streamedAnswer.result ? `partial=${streamedAnswer.result.partial}` : `error ${streamedAnswer.error?.code}`}`);
    // No hang: well within the edge's per-attempt worker timeout (10 s) after the kill.
    expect(elapsed).toBeLessThan(9_000);
    // Clean: a complete answer (the dead worker's shards went to their next owners), or one flagged
    // partial, or a 5xx with a JSON error — never a crash or a hang.
    for (const answer of [wholeAnswer, streamedAnswer]) expectCleanAnswer(answer, shards);

    // The retry, with the worker back on its port, is complete and agrees with what was served.
    await product.restartWorker(victim);
    for (const [i, answer] of [wholeAnswer, streamedAnswer].entries()) {
      const retry = await exact(a, queries[i]!);
      expect(retry.status).toBe(200);
      expect(retry.result).toMatchObject({ version: 4, partial: false, missingShards: [] });
      if (answer.result && !answer.result.partial) expect(retry.result!.hits).toEqual(answer.result.hits);
    }
  }, 120_000);

  it("8. after a restart of the whole stack, tenants, keys and indexes remain and searches return the same hits", async () => {
    const before = new Map<string, SearchResult>();
    for (const q of QUERIES) before.set(q.id, (await exact(a, q.text)).result!);

    await product.restart();

    const list = (await a.json("GET", "/v1/indexes")) as { indexes: Array<{ id: string; activeVersion: number | null }> };
    expect(list.indexes).toEqual([expect.objectContaining({ id: INDEX, activeVersion: 4 })]);
    expect(((await b.json("GET", "/v1/indexes")) as { indexes: Array<{ id: string }> }).indexes.map((i) => i.id)).toEqual([INDEX]);
    expect((await exact(product.tenant(revokedKey), "zebras")).status).toBe(401);
    expect((await exact(aSearchOnly, QUERIES[0]!.text)).status).toBe(200);
    expect((await exact(b, QUERIES[0]!.text)).status).toBe(409);

    for (const q of QUERIES) {
      // The JSON answer may come from the (persisted) result cache; the stream is never cached,
      // so it proves the restarted workers serve the same hits.
      const json = await exact(a, q.text);
      const streamed = await exact(a, q.text, "ndjson");
      for (const answer of [json, streamed]) {
        expect(answer.status).toBe(200);
        expect(stripStats(answer.result!)).toEqual(stripStats(before.get(q.id)!));
      }
    }
  }, 150_000);

  // ─── helpers ───────────────────────────────────────────────────────────────────────────────────

  /** The worker (by position) that `key` is placed on first. */
  function victimFor(key: string): number {
    const first = ownersFor(key, product.workers.map((w) => w.url))[0];
    return product.workers.findIndex((w) => w.url === first);
  }

  async function activeShards(version: number): Promise<string[]> {
    const client = await s3TestClient();
    try {
      const object = await client.send(new GetObjectCommand({ Bucket: product.s3.bucket, Key: manifestKey(TENANT_A, INDEX, version) }));
      return (JSON.parse(await object.Body!.transformToString()) as { shards: Array<{ id: string }> }).shards.map((s) => s.id);
    } finally {
      client.destroy();
    }
  }
});

const close = (x: number, y: number) => Math.abs(x - y) <= SCORE_RTOL * Math.max(Math.abs(x), Math.abs(y));

/**
 * The served top-k equals the offline top-k: same scores rank by rank, each hit's score equal to the
 * CLI's score for that document, and the same documents — except that documents whose offline score
 * is within the tolerance of the k-th score may trade places at the cut (this random model's
 * neighbouring scores can differ by ~1e-6 relative, below what two float32 runs guarantee).
 * Returns whether the ids came in exactly the offline order.
 */
function expectSameTopK(hits: SearchResult["hits"], offline: Map<string, number>, k: number, label: string): boolean {
  const ranked = [...offline].sort((x, y) => y[1] - x[1]).slice(0, k);
  expect(hits, label).toHaveLength(k);
  const kth = ranked[k - 1]![1];
  for (const [i, hit] of hits.entries()) {
    const own = offline.get(hit.id);
    expect(own, `${label}: hit ${hit.id} is a document of the corpus`).toBeDefined();
    expect(close(hit.score, own!), `${label}: ${hit.id} scored ${hit.score} online, ${own} offline`).toBe(true);
    expect(close(hit.score, ranked[i]![1]), `${label}: rank ${i} scored ${hit.score} online, ${ranked[i]![1]} offline`).toBe(true);
  }
  const served = new Set(hits.map((h) => h.id));
  for (const [id, score] of ranked) {
    if (!close(score, kth)) expect(served.has(id), `${label}: ${id} (offline ${score}) is missing online`).toBe(true);
  }
  return hits.every((h, i) => h.id === ranked[i]![0]);
}

function stripStats(result: SearchResult): Omit<SearchResult, "stats"> {
  const { stats: _stats, ...rest } = result;
  return rest;
}

async function waitForCacheHit(run: () => Promise<ReadAnswer>): Promise<ReadAnswer> {
  // The cache write runs in the background (waitUntil) after the first answer was sent.
  for (let i = 0; i < 20; i++) {
    const answer = await run();
    if (answer.xCache === "HIT") return answer;
    await sleep(100);
  }
  throw new Error("the answer was never served from the result cache");
}

function expectCleanAnswer(answer: ReadAnswer, shards: string[]): void {
  if (answer.status === 200 && answer.result) {
    if (answer.result.partial) {
      expect(answer.result.missingShards.length).toBeGreaterThan(0);
      expect(answer.result.missingShards.every((s) => shards.includes(s))).toBe(true);
    } else {
      expect(answer.result.missingShards).toEqual([]);
      expect(answer.result.hits).toHaveLength(K);
    }
    return;
  }
  // A committed stream reports a failure as its last frame; a whole answer as a JSON error body.
  if (answer.status === 200) expect(answer.error?.code).toEqual(expect.any(String));
  else {
    expect(answer.status).toBeGreaterThanOrEqual(500);
    expect(answer.error?.code).toEqual(expect.any(String));
  }
}
