/**
 * Living indexes end to end (issue 10), through the public API only, on real processes: two GPU
 * worker processes on the tiny model, the edge under `wrangler dev` (local D1, the IndexWriter
 * Durable Object), a fresh radosgw bucket. Compaction and GC run for real with small thresholds, so
 * they happen while the steps run: every check must hold whatever the background has done.
 *
 * The test keeps its own model of the live documents (`live`), updated after each acknowledged
 * write, and compares the service with it: exact search returns exactly the live documents with the
 * CLI's scores (`hypencoder score` over exactly those documents), and document reads agree.
 *
 * The only non-public reads: S3 listings (deleted data must be gone) and the workers' /metrics.
 */
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiRequestError, PublicApi, type WriteAnswer } from "../../infra/dev/public-api.ts";
import { indexPrefix, uploadPrefix } from "../../shared/index/keys.ts";
import { scoreOffline } from "../support/offline-score.ts";
import { note, ProductStack } from "../support/product-stack.ts";
import { s3TestClient } from "../support/s3.ts";
import { readAnswer, type ReadAnswer } from "../support/search-answers.ts";

const TENANT = "living";
const INDEX = "live";
const SCORE_RTOL = 1e-4;
const FLOAT16_RTOL = 5e-3;
const COLORS = ["red", "green", "blue"];
const WORDS = ["otters", "sextants", "marmalade", "typhoons", "basalt", "accordions", "lichens", "comets"];
const text = (id: string, salt = 0) => `${id} writes about ${WORDS[(id.length + salt) % WORDS.length]} and ${WORDS[(id.charCodeAt(id.length - 1) + salt) % WORDS.length]} (${salt})`;
const doc = (id: string, salt = 0) => ({ id, text: text(id, salt), color: COLORS[(id.length + salt) % 3]!, n: salt });
const QUERY = "otters and comets";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type LiveDoc = ReturnType<typeof doc>;

describe("living indexes end to end (real processes, public API)", () => {
  let product: ProductStack;
  let api: PublicApi;
  let second: PublicApi; // another key of the same tenant: a second concurrent writer
  /** What the index must hold after every acknowledged write. */
  const live = new Map<string, LiveDoc>();
  const seqs: number[] = [];
  /** The upload of the bulk build (step 7): deleted with the index. */
  let liveUpload = "";

  const acked = (answer: WriteAnswer) => {
    seqs.push(answer.seq);
    return answer;
  };
  const upsert = async (docs: LiveDoc[], deletes: string[] = [], key?: string) => {
    const answer = acked(await api.write(INDEX, { ...(docs.length ? { upsert: docs } : {}), ...(deletes.length ? { delete: deletes } : {}) }, key));
    for (const id of deletes) live.delete(id);
    for (const d of docs) live.set(d.id, d);
    return answer;
  };
  const search = async (body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<ReadAnswer> => readAnswer(await api.search(INDEX, body, headers));

  /** Exact search equals brute-force scoring of exactly the live documents (`hypencoder score`). */
  /**
   * `rtol`: 1e-4 while every document is in the WAL (float32 embeddings, as the CLI scores them);
   * compacted segments store float16 (the build default), which moves scores by up to ~1e-3 relative.
   */
  async function expectExactEqualsLive(label: string, withScores = false, rtol = SCORE_RTOL): Promise<void> {
    const answer = await search({ query: QUERY, k: 1000, mode: "exact" });
    expect(answer.status, `${label}: ${JSON.stringify(answer.error)}`).toBe(200);
    const hits = answer.result!.hits;
    expect(new Set(hits.map((h) => h.id)), label).toEqual(new Set(live.keys()));
    expect(hits).toHaveLength(live.size);
    for (let i = 1; i < hits.length; i++) expect(hits[i - 1]!.score).toBeGreaterThanOrEqual(hits[i]!.score);
    if (!withScores) return;
    const docs = [...live.values()].map((d) => ({ id: d.id, text: d.text }));
    const offline = (await scoreOffline(product.modelDir, product.dir, [{ id: "q", text: QUERY }], docs, `live-${seqs.length}`)).get("q")!;
    for (const hit of hits) {
      const own = offline.get(hit.id)!;
      expect(Math.abs(hit.score - own) <= rtol * Math.max(Math.abs(own), Math.abs(hit.score)), `${label}: ${hit.id} scored ${hit.score} online, ${own} offline`).toBe(true);
    }
  }

  async function expectDocumentsMatch(ids: string[], label: string): Promise<void> {
    for (const id of ids) {
      const got = await api.document(INDEX, id);
      const want = live.get(id);
      if (!want) expect(got, `${label}: ${id} must be gone`).toBeUndefined();
      else expect(got, `${label}: ${id}`).toEqual({ id, fields: { text: want.text, color: want.color, n: want.n } });
    }
  }

  beforeAll(async () => {
    product = await ProductStack.start({
      prefix: "e2e-living",
      workers: 2,
      edgeVars: {
        WORKER_TIMEOUT_MS: "15000",
        RATE_LIMIT_PER_MINUTE: "0",
        // Small thresholds, so compaction and GC run during the test.
        COMPACT_TAIL_DOCS: "40",
        COMPACT_TAIL_AGE_SECONDS: "4",
        GC_GRACE_SECONDS: "2",
        GC_INTERVAL_SECONDS: "10",
      },
      workerEnv: { DEVICE: "cpu" },
    });
    const admin = product.admin();
    await admin.createTenant(TENANT);
    api = product.tenant(await admin.createKey(TENANT, ["search", "manage"]));
    second = product.tenant(await admin.createKey(TENANT, ["search", "manage"]));
    await api.createIndex(INDEX);
  }, 240_000);

  afterAll(async () => {
    await product?.close();
  });

  it("1. writes to a never-built index are acknowledged with a seq and searchable at once", async () => {
    const answer = await upsert(Array.from({ length: 24 }, (_, i) => doc(`d${i}`)));
    expect(answer).toEqual({ seq: expect.any(Number), upserted: 24, deleted: 0 });
    await expectExactEqualsLive("after the first write", true);
    const approx = await search({ query: QUERY, k: 5 });
    expect(approx.status).toBe(200);
    expect(approx.result!.hits.every((h) => live.has(h.id))).toBe(true);
    await expectDocumentsMatch(["d0", "d7", "d23", "nope"], "after the first write");
  });

  it("2. delete, replace and re-upsert: each is visible in search and reads as soon as it is acknowledged", async () => {
    const mixed = await upsert([doc("d2", 1), doc("d30", 1)], ["d0", "d1", "never-there"]);
    expect(mixed).toMatchObject({ upserted: 2, deleted: 3 });
    await expectExactEqualsLive("after delete + replace", true);
    await expectDocumentsMatch(["d0", "d1", "d2", "d30"], "after delete + replace");

    await upsert([doc("d0", 2)]);
    await expectExactEqualsLive("after re-upsert");
    await expectDocumentsMatch(["d0"], "after re-upsert");

    const fields = await search({ query: QUERY, k: 50, mode: "exact", fields: ["text", "color"] });
    for (const hit of fields.result!.hits) expect(hit.fields).toEqual({ text: live.get(hit.id)!.text, color: live.get(hit.id)!.color });
  });

  it("3. an Idempotency-Key makes a retry safe; the same key with another body is 409", async () => {
    const key = `retry-${Date.now()}`;
    const first = await upsert([doc("idem1", 3)], [], key);
    const head = (await api.index(INDEX)).headSeq;
    const again = await api.write(INDEX, { upsert: [doc("idem1", 3)] }, key);
    expect(again).toEqual(first);
    expect((await api.index(INDEX)).headSeq).toBe(head);
    const conflict = await api.write(INDEX, { upsert: [doc("idem1", 4)] }, key).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(ApiRequestError);
    expect((conflict as ApiRequestError).status).toBe(409);
    await expectDocumentsMatch(["idem1"], "after the retries");
  });

  it("4. two concurrent writers: seqs strictly increase and no acknowledged write is lost", async () => {
    const run = async (client: PublicApi, prefix: string) => {
      const got: number[] = [];
      for (let i = 0; i < 6; i++) {
        const d = doc(`${prefix}${i}`, 5);
        const answer = await client.write(INDEX, { upsert: [d] });
        live.set(d.id, d);
        got.push(answer.seq);
      }
      return got;
    };
    const [a, b] = await Promise.all([run(api, "wa"), run(second, "wb")]);
    for (const s of [a, b]) for (let i = 1; i < s.length; i++) expect(s[i]!).toBeGreaterThan(s[i - 1]!);
    const all = [...a, ...b];
    expect(new Set(all).size).toBe(all.length);
    expect(Math.min(...all)).toBeGreaterThan(Math.max(...seqs));
    seqs.push(...all);
    await expectExactEqualsLive("after concurrent writers");
    await expectDocumentsMatch(["wa0", "wa5", "wb0", "wb5"], "after concurrent writers");
  });

  it("5. a write invalidates cached answers: the next search misses the cache and sees it", async () => {
    const body = { query: "cache me with otters", k: 1000, mode: "exact" };
    await search(body);
    let cached: ReadAnswer | undefined;
    for (let i = 0; i < 20 && cached?.xCache !== "HIT"; i++) {
      await sleep(100);
      cached = await search(body);
    }
    expect(cached?.xCache).toBe("HIT");
    await upsert([doc("fresh", 6)]);
    const after = await search(body);
    expect(after.xCache).toBe("MISS");
    expect(after.result!.hits.map((h) => h.id)).toContain("fresh");
  });

  it("6. compaction folds the tail into a graph segment in the background; results do not change", async () => {
    // Enough to pass COMPACT_TAIL_DOCS; the tail age limit compacts the rest.
    await upsert(Array.from({ length: 45 }, (_, i) => doc(`c${i}`, 7)));
    const deadline = Date.now() + 120_000;
    let detail = await api.index(INDEX);
    while (!(detail.pendingDocs === 0 && detail.compactedSeq === detail.headSeq) && Date.now() < deadline) {
      await sleep(1000);
      detail = await api.index(INDEX);
    }
    note(`after compaction: ${JSON.stringify(detail)}`);
    expect(detail).toMatchObject({ pendingDocs: 0, docCount: live.size });
    expect(detail.compactedSeq).toBe(detail.headSeq);
    expect(detail.activeVersion).toBeGreaterThanOrEqual(1);
    expect(detail.segments).toBeGreaterThanOrEqual(1);
    await expectExactEqualsLive("after compaction", true, FLOAT16_RTOL);
    const approx = await search({ query: QUERY, k: 10 });
    expect(approx.result!.hits).toHaveLength(10);
    expect(approx.result!.hits.every((h) => live.has(h.id))).toBe(true);
    // Writes after compaction land in the tail of the new version.
    await upsert([doc("after-compaction", 8)], ["c0"]);
    await expectExactEqualsLive("a write after compaction");
  });

  it("7. a bulk build replaces the contents as of its start; writes acknowledged after it stay visible", async () => {
    const built = Array.from({ length: 30 }, (_, i) => doc(`b${i}`, 9));
    const upload = await api.upload(INDEX, [{ name: "bulk.jsonl", body: new TextEncoder().encode(built.map((d) => JSON.stringify(d)).join("\n") + "\n") }]);
    liveUpload = upload;
    const started = await api.startBuild(INDEX, upload, { dtype: "float32", storeFields: ["text", "color", "n"] });
    const during = doc("during-build", 10);
    await upsert([during]);
    const done = await api.waitForBuild(INDEX, started.id, { timeoutMs: 120_000 });
    expect(done.state).toBe("succeeded");
    live.clear();
    for (const d of built) live.set(d.id, d);
    live.set(during.id, during);
    await expectExactEqualsLive("after the bulk build", true);
    await expectDocumentsMatch(["d5", "b3", "during-build"], "after the bulk build");
  });

  it("8. memory: after five rebuilds and searches, each worker holds at most the active versions (gauges)", async () => {
    const other = "rebuilt";
    await api.createIndex(other);
    for (let round = 0; round < 5; round++) {
      const docs = Array.from({ length: 20 }, (_, i) => doc(`r${round}-${i}`, round));
      const upload = await api.upload(other, [{ name: "r.jsonl", body: new TextEncoder().encode(docs.map((d) => JSON.stringify(d)).join("\n") + "\n") }]);
      const started = await api.startBuild(other, upload, { degree: 8 });
      expect((await api.waitForBuild(other, started.id, { timeoutMs: 120_000 })).state).toBe("succeeded");
      expect((await readAnswer(await api.search(other, { query: QUERY, k: 3 }))).status).toBe(200);
    }
    // Old versions are released once their searches end; give in-flight work a moment.
    await sleep(1500);
    for (const worker of product.workers) {
      const text = await (await fetch(`${worker.url}/metrics`)).text();
      const versions = Number(/^hypencoder_loaded_versions(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? NaN);
      const bytes = Number(/^hypencoder_loaded_bytes(?:\{[^}]*\})? ([\d.e+]+)/m.exec(text)?.[1] ?? NaN);
      note(`${worker.url}: loaded versions ${versions}, bytes ${bytes}`);
      // Two indexes: each worker may hold the active version of each, never the superseded rebuilds.
      expect(versions).toBeLessThanOrEqual(2);
      expect(bytes).toBeGreaterThanOrEqual(0);
    }
  });

  it("9. deleting an index: 404 at once, and every object under its prefix (and its uploads) is gone within 60 s", async () => {
    const s3 = await s3TestClient();
    const list = async (prefix: string) =>
      (await s3.send(new ListObjectsV2Command({ Bucket: product.s3.bucket, Prefix: prefix }))).Contents?.map((o) => o.Key!) ?? [];
    const prefix = indexPrefix(TENANT, INDEX);
    expect((await list(prefix)).length).toBeGreaterThan(0);
    expect((await list(uploadPrefix(TENANT, liveUpload))).length).toBeGreaterThan(0);

    const t0 = Date.now();
    expect((await api.request("DELETE", `/v1/indexes/${INDEX}`)).status).toBe(200);
    expect((await api.search(INDEX, { query: QUERY })).status).toBe(404);
    expect((await api.request("POST", `/v1/indexes/${INDEX}/documents`, { upsert: [doc("late")] })).status).toBe(404);
    expect((await api.request("GET", `/v1/indexes/${INDEX}/documents/d5`)).status).toBe(404);

    // The index prefix and the index's upload: both must be empty within the documented 60 s.
    const leftovers = async () => [...(await list(prefix)), ...(await list(uploadPrefix(TENANT, liveUpload)))];
    let left = await leftovers();
    while (left.length > 0 && Date.now() - t0 < 60_000) {
      await sleep(500);
      left = await leftovers();
    }
    note(`index prefix and upload empty after ${Date.now() - t0} ms`);
    expect(left).toEqual([]);
    // Another index's data stays.
    expect((await list(indexPrefix(TENANT, "rebuilt"))).length).toBeGreaterThan(0);
  }, 90_000);
});
