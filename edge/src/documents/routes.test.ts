import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { jsonRequest, keyFetch, tenantWithKey } from "../../test/support.ts";
import { describe, expect, it } from "vitest";
import type { DocumentGetRequest, WriteAnswer } from "../../../shared/api/living-api.ts";
import { batchHash } from "../../../shared/index/wal.ts";
import { fakeWal, useFakePool } from "../../test/fake-wal.ts";
import { fakeWorkerPool } from "../../test/fake-workers.ts";
import { seedIndex, stubAuth, testApp } from "../../test/route-harness.ts";
import { softDeleteIndex } from "../db/indexes.ts";
import type { IndexWriter } from "../living/index-writer.ts";
import { pendingBatches, pendingDocs, resetPending, tailSince } from "../living/writer-state.ts";
import { indexOwnerKey, ownersFor } from "../routing/rendezvous.ts";
import { parseWorkerPool } from "../routing/worker-pool.ts";
import { createDocumentRoutes } from "./routes.ts";

const SECRET = (env as unknown as { WORKER_SIGNING_SECRET: string }).WORKER_SIGNING_SECRET;
const WORKERS = parseWorkerPool((env as unknown as { GPU_WORKERS: string }).GPU_WORKERS);

async function setup() {
  const { tenant, index } = await seedIndex(env.DB);
  const pool = fakeWorkerPool(SECRET);
  const wal = fakeWal(pool);
  const writer = await useFakePool(env, tenant, index, pool);
  const app = testApp(createDocumentRoutes({ fetcher: pool.fetcher, auth: () => stubAuth(tenant) }));
  const call = async (path: string, init?: RequestInit): Promise<Response> => app.request(path, init, env);
  const write = (body: unknown, headers: Record<string, string> = {}) =>
    call(`/v1/indexes/${index}/documents`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
  const headSeq = async () => (await env.DB.prepare("SELECT head_seq FROM indexes WHERE tenant_id = ?1 AND id = ?2").bind(tenant, index).first<{ head_seq: number }>())!.head_seq;
  const walCalls = () => pool.calls.filter((c) => c.path === "/v1/wal");
  return { tenant, index, pool, wal, writer, call, write, headSeq, walCalls, log: () => wal.of(tenant, index) };
}

const doc = (id: string, extra: Record<string, unknown> = {}) => ({ id, text: `text of ${id}`, ...extra });

describe("POST /v1/indexes/:id/documents", () => {
  it("stores the batch on the index's owner worker, commits head_seq, then answers", async () => {
    const s = await setup();
    const response = await s.write({ upsert: [doc("a", { title: "A" }), doc("b")], delete: ["zz"] });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ seq: 1, upserted: 2, deleted: 1 });
    expect(await s.headSeq()).toBe(1);
    const [walCall] = s.walCalls();
    expect(walCall!.worker).toBe(ownersFor(indexOwnerKey(s.tenant, s.index), WORKERS)[0]);
    expect(walCall!.tenant).toBe(s.tenant);
    const stored = s.log().get(1)!;
    expect(stored.upsert).toEqual([doc("a", { title: "A" }), doc("b")]);
    expect(stored.batchHash).toBe(batchHash([{ id: "a", fields: { text: "text of a", title: "A" } }, { id: "b", fields: { text: "text of b" } }], ["zz"]));
    // Either list may be absent; integer ids become strings.
    expect(await (await s.write({ delete: [7] })).json()).toEqual({ seq: 2, upserted: 0, deleted: 1 });
    expect(s.log().get(2)!.delete).toEqual(["7"]);
    expect(await s.headSeq()).toBe(2);
    expect((await counters(s.writer)).docs).toBe(2);
  });

  it.each([
    ["an empty body object", {}, /at least one/],
    ["two empty lists", { upsert: [], delete: [] }, /at least one/],
    ["an unknown key", { upsert: [doc("a")], extra: 1 }, /body: Unrecognized key/],
    ["a missing text", { upsert: [{ id: "a" }] }, /body\.upsert\[0\]\.text/],
    ["an empty text", { upsert: [{ id: "a", text: "  " }] }, /text must not be empty/],
    ["an empty id", { upsert: [{ id: "", text: "x" }] }, /id must not be empty/],
    ["a long id", { upsert: [{ id: "x".repeat(513), text: "x" }] }, /at most 512 characters/],
    ["a fractional id", { delete: [1.5] }, /body\.delete\[0\]/],
    ["an object id", { delete: [{ id: "a" }] }, /body\.delete\[0\]/],
    ["upsert not a list", { upsert: doc("a") }, /body\.upsert/],
    ["1,001 upserts", { upsert: Array.from({ length: 1001 }, (_, i) => doc(`d${i}`)) }, /body\.upsert/],
    ["1,001 entries in all", { upsert: Array.from({ length: 501 }, (_, i) => doc(`d${i}`)), delete: Array.from({ length: 500 }, (_, i) => `x${i}`) }, /at most 1000 upserts and deletes/],
  ])("400 for %s, and nothing is written", async (_what, body, message) => {
    const s = await setup();
    const response = await s.write(body);
    expect(response.status).toBe(400);
    const { error } = await response.json<{ error: { code: string; message: string } }>();
    expect(error.code).toBe("invalid_request");
    expect(error.message).toMatch(message);
    expect(s.walCalls()).toEqual([]);
    expect(await s.headSeq()).toBe(0);
  });

  describe("declared filter fields", () => {
    const FIELDS = { section: "string", year: "number", tags: "string[]", free: "boolean" };
    const typed = async () => {
      const s = await setup();
      // As POST /v1/indexes {"fields"} stores them (indexes/routes.test.ts covers the route).
      await env.DB.prepare("UPDATE indexes SET filter_fields = ?3 WHERE tenant_id = ?1 AND id = ?2").bind(s.tenant, s.index, JSON.stringify(FIELDS)).run();
      return s;
    };

    it("documents with the declared types, absent (missing or null) declared fields and undeclared fields are stored as given", async () => {
      const s = await typed();
      const upsert = [
        doc("a", { section: "intro", year: 2001, tags: ["x", "y"], free: true, author: { any: "thing" } }),
        doc("b", { year: null, tags: [] }),
        doc("c"),
      ];
      const response = await s.write({ upsert });
      expect(response.status).toBe(200);
      expect(s.log().get(1)!.upsert).toEqual(upsert);
    });

    it.each([
      ["a string for a number", [doc("ok"), doc("bad", { year: "2001" })], /body\.upsert\[1\] \(document "bad"\): field "year" is declared number and must be a finite number, got a string/],
      ["a number for a string", [doc("n1", { section: 3 })], /document "n1"\): field "section" is declared string/],
      ["a non-string array element", [doc("t", { tags: ["a", 1] })], /document "t"\): field "tags" is declared string\[\].*non-string element/],
      ["a string for a string[]", [doc("t", { tags: "a" })], /field "tags" is declared string\[\]/],
      ["a string for a boolean", [doc("f", { free: "yes" })], /document "f"\): field "free" is declared boolean/],
      ["an object for a number", [doc("o", { year: { $gt: 1 } })], /field "year" is declared number.*got an object/],
    ])("400 for %s, naming the document and field, and nothing is written", async (_what, upsert, message) => {
      const s = await typed();
      const response = await s.write({ upsert });
      expect(response.status).toBe(400);
      const { error } = await response.json<{ error: { code: string; message: string } }>();
      expect(error.code).toBe("invalid_request");
      expect(error.message).toMatch(message);
      expect(s.walCalls()).toEqual([]);
      expect(await s.headSeq()).toBe(0);
    });

    it("an index without declared fields takes any field values", async () => {
      const s = await setup();
      expect((await s.write({ upsert: [doc("a", { year: "not a number", tags: 7 })] })).status).toBe(200);
    });
  });

  it("400 for bad JSON, 415 for another content type, 413 over 8 MiB", async () => {
    const s = await setup();
    const bad = await s.write("{not json");
    expect(bad.status).toBe(400);
    expect((await bad.json<{ error: { code: string } }>()).error.code).toBe("invalid_json");
    const text = await s.call(`/v1/indexes/${s.index}/documents`, { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" });
    expect(text.status).toBe(415);
    const big = await s.write({ upsert: [doc("a", { blob: "x".repeat(8 * 2 ** 20) })] });
    expect(big.status).toBe(413);
    expect(s.walCalls()).toEqual([]);
  });

  it.each([
    ["empty", ""],
    ["with a space", "a b"],
    ["non-ASCII", "clé"],
    ["longer than 255", "k".repeat(256)],
  ])("400 for an Idempotency-Key %s", async (_what, key) => {
    const s = await setup();
    const response = await s.write({ upsert: [doc("a")] }, { "idempotency-key": key });
    expect(response.status).toBe(400);
    expect((await response.json<{ error: { message: string } }>()).error.message).toMatch(/Idempotency-Key/);
    expect(s.walCalls()).toEqual([]);
  });

  it("404 for an unknown, another tenant's or a deleted index; a deleted index's writer refuses too", async () => {
    const s = await setup();
    expect((await s.call("/v1/indexes/nowhere/documents", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ delete: ["a"] }) })).status).toBe(404);
    const other = await seedIndex(env.DB);
    const foreign = testApp(createDocumentRoutes({ fetcher: s.pool.fetcher, auth: () => stubAuth(other.tenant) }));
    expect((await foreign.request(`/v1/indexes/nowhere-${s.index}/documents`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }, env)).status).toBe(404);
    await softDeleteIndex(env.DB, s.tenant, s.index);
    expect((await s.write({ delete: ["a"] })).status).toBe(404);
    await s.writer.destroy(s.tenant, s.index);
    const refused = await s.writer.write({ tenant: s.tenant, index: s.index, upsert: [], delete: ["a"] });
    expect(refused).toMatchObject({ ok: false, status: 404 });
    expect(s.walCalls()).toEqual([]);
  });

  it("Idempotency-Key: the same body replays the first answer and applies nothing twice; another body is 409", async () => {
    const s = await setup();
    const body = { upsert: [doc("a")], delete: ["b"] };
    const first = await s.write(body, { "idempotency-key": "key-1" });
    expect(first.status).toBe(200);
    const answer = await first.json<WriteAnswer>();
    const again = await s.write(body, { "idempotency-key": "key-1" });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(answer);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(s.walCalls()).toHaveLength(1);
    expect(await s.headSeq()).toBe(1);

    const reused = await s.write({ upsert: [doc("a", { title: "changed" })] }, { "idempotency-key": "key-1" });
    expect(reused.status).toBe(409);
    expect((await reused.json<{ error: { code: string } }>()).error.code).toBe("idempotency_key_reused");
    // Without the key, the same body is a new write.
    expect(await (await s.write(body)).json()).toEqual({ seq: 2, upserted: 1, deleted: 1 });
    expect((await counters(s.writer)).batches).toBe(2);
  });

  it("Idempotency-Keys are forgotten after 24 h (pruned by the alarm)", async () => {
    const s = await setup();
    expect((await s.write({ delete: ["a"] }, { "idempotency-key": "old" })).status).toBe(200);
    const later = Date.now() + 25 * 3600 * 1000;
    await runInDurableObject(s.writer, (instance) => {
      (instance as unknown as IndexWriter).now = () => later;
    });
    expect(await runDurableObjectAlarm(s.writer)).toBe(true);
    const stored = await runInDurableObject(s.writer, async (_instance, state) => [...(await state.storage.list({ prefix: "writer:idem" })).keys()]);
    expect(stored).toEqual([]);
    // The key is free again: another body is a new write, not a 409.
    expect(await (await s.write({ delete: ["b"] }, { "idempotency-key": "old" })).json()).toEqual({ seq: 2, upserted: 0, deleted: 1 });
  });

  it("two concurrent writers: strictly increasing seqs, every batch stored and committed", async () => {
    const s = await setup();
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => s.write(i % 2 === 0 ? { upsert: [doc(`w1-${i}`)] } : { upsert: [doc(`w2-${i}`)], delete: [`w1-${i - 1}`] }).then((r) => r.json<WriteAnswer>())),
    );
    const seqs = answers.map((a) => a.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect([...s.log().keys()].sort((a, b) => a - b)).toEqual(seqs);
    // The worker saw them in seq order: the writer never had two in flight.
    expect(s.walCalls().map((c) => (c.body as { seq: number }).seq)).toEqual(seqs);
    expect(await s.headSeq()).toBe(12);
    expect((await counters(s.writer)).docs).toBe(12);
  });

  it("no worker reachable: 503 with Retry-After, nothing committed; the next write seals the seq in doubt", async () => {
    const s = await setup();
    for (const w of WORKERS) s.pool.behaviour.set(w, "down");
    const down = await s.write({ upsert: [doc("a")] });
    expect(down.status).toBe(503);
    expect(down.headers.get("retry-after")).toBe("1");
    expect((await down.json<{ error: { code: string } }>()).error.code).toBe("workers_unavailable");
    expect(await s.headSeq()).toBe(0);
    expect((await s.writer.state()).inDoubtSeq).toBe(1);

    for (const w of WORKERS) s.pool.behaviour.delete(w);
    const next = await s.write({ upsert: [doc("b")] });
    expect(await next.json()).toEqual({ seq: 2, upserted: 1, deleted: 0 });
    // Seq 1 was sealed with an empty batch before seq 2 was used: a gap, never a late batch.
    expect(s.log().get(1)).toMatchObject({ seal: true, upsert: [], delete: [] });
    expect(await s.headSeq()).toBe(2);
    expect((await s.writer.state()).inDoubtSeq).toBeNull();
    expect((await counters(s.writer)).docs).toBe(1);
  });

  it("worker storage failing (5xx on every owner): 503, nothing acknowledged", async () => {
    const s = await setup();
    for (const w of WORKERS) s.pool.behaviour.set(w, "http500");
    const response = await s.write({ upsert: [doc("a")] });
    expect(response.status).toBe(503);
    expect(await s.headSeq()).toBe(0);
    expect(s.walCalls()).toHaveLength(WORKERS.length);
  });

  it("the owner dies after storing: the next owner finds the same batch, and it is acknowledged once", async () => {
    const s = await setup();
    s.wal.lostAnswers = 1;
    const response = await s.write({ upsert: [doc("a")] });
    expect(await response.json()).toEqual({ seq: 1, upserted: 1, deleted: 0 });
    const calls = s.walCalls();
    expect(calls.map((c) => c.worker)).toEqual(ownersFor(indexOwnerKey(s.tenant, s.index), WORKERS).slice(0, 2));
    expect(s.log().size).toBe(1);
    expect(await s.headSeq()).toBe(1);
  });

  it("a batch stored but its answer lost: the retry with its key resends the same seq, applied once", async () => {
    const s = await setup();
    s.wal.lostAnswers = WORKERS.length; // the first owner stores; every owner's answer is lost
    const body = { upsert: [doc("a")] };
    const lost = await s.write(body, { "idempotency-key": "retry-me" });
    expect(lost.status).toBe(503);
    expect(await s.headSeq()).toBe(0);
    s.wal.lostAnswers = 0;
    const retried = await s.write(body, { "idempotency-key": "retry-me" });
    expect(await retried.json()).toEqual({ seq: 1, upserted: 1, deleted: 0 });
    expect(s.log().size).toBe(1);
    expect(await s.headSeq()).toBe(1);
  });

  it("a batch stored but its answer lost, then ANOTHER write: the seal finds the real batch, which is committed", async () => {
    const s = await setup();
    s.wal.lostAnswers = WORKERS.length;
    expect((await s.write({ upsert: [doc("a")] }, { "idempotency-key": "first" })).status).toBe(503);
    s.wal.lostAnswers = 0;
    expect(await (await s.write({ upsert: [doc("b")] })).json()).toEqual({ seq: 2, upserted: 1, deleted: 0 });
    expect(s.log().get(1)).toMatchObject({ seal: false, upsert: [doc("a")] });
    expect(await s.headSeq()).toBe(2);
    expect((await counters(s.writer)).docs).toBe(2);
    // Its key now answers with the seq it really got.
    expect(await (await s.write({ upsert: [doc("a")] }, { "idempotency-key": "first" })).json()).toEqual({ seq: 1, upserted: 1, deleted: 0 });
  });

  it("a lost write's key reused with another body: the seal commits the first batch, and the key is 409", async () => {
    const s = await setup();
    s.wal.lostAnswers = WORKERS.length;
    expect((await s.write({ upsert: [doc("a")] }, { "idempotency-key": "k" })).status).toBe(503);
    s.wal.lostAnswers = 0;
    const reused = await s.write({ upsert: [doc("b")] }, { "idempotency-key": "k" });
    expect(reused.status).toBe(409);
    expect(s.log().get(1)).toMatchObject({ upsert: [doc("a")] });
    expect(s.log().size).toBe(1);
    expect(await s.headSeq()).toBe(1);
  });

  it("a seq already holding another batch (409 wal_conflict) is skipped, never overwritten", async () => {
    const s = await setup();
    s.log().set(1, { seq: 1, batchHash: "f".repeat(64), upsert: [], delete: ["x"], seal: false });
    expect(await (await s.write({ delete: ["y"] })).json()).toEqual({ seq: 2, upserted: 0, deleted: 1 });
    expect(s.log().get(1)!.delete).toEqual(["x"]);
  });

  it("seqs continue above D1's head_seq even when the writer's storage is behind", async () => {
    const s = await setup();
    await env.DB.prepare("UPDATE indexes SET head_seq = 40 WHERE tenant_id = ?1 AND id = ?2").bind(s.tenant, s.index).run();
    expect((await (await s.write({ delete: ["a"] })).json<WriteAnswer>()).seq).toBe(41);
  });

  it("sets a maintenance alarm after a write", async () => {
    const s = await setup();
    await s.write({ delete: ["a"] });
    const alarm = await runInDurableObject(s.writer, (_instance, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
  });
});

describe("writer state", () => {
  it("resetPending keeps only the batches after the compacted seq", async () => {
    const s = await setup();
    await s.write({ upsert: [doc("a"), doc("b")] });
    await s.write({ upsert: [doc("c")] });
    await s.write({ upsert: [doc("d"), doc("e"), doc("f")] });
    const before = await counters(s.writer);
    expect([before.docs, before.batches]).toEqual([6, 3]);
    expect(before.since).not.toBeNull();
    await runInDurableObject(s.writer, (_i, state) => resetPending(state.storage, 2));
    const after = await counters(s.writer);
    expect([after.docs, after.batches]).toEqual([3, 1]);
    expect(after.since).toBeGreaterThanOrEqual(before.since!);
    await runInDurableObject(s.writer, (_i, state) => resetPending(state.storage, 3));
    expect(await counters(s.writer)).toEqual({ docs: 0, batches: 0, since: null });
  });
});

describe("GET /v1/indexes/:id/documents/:docId", () => {
  it("asks the index's owner worker with the active version and the whole tail", async () => {
    const s = await setup();
    await s.write({ upsert: [doc("a", { title: "A" })] });
    s.pool.routes.set("POST /v1/documents/get", (call) => {
      const request = call.body as unknown as DocumentGetRequest;
      if (request.id !== "a") return Response.json({ error: { code: "document_not_found", message: "no" } }, { status: 404 });
      return Response.json({ id: "a", fields: { text: "text of a", title: "A" } });
    });
    const found = await s.call(`/v1/indexes/${s.index}/documents/a`);
    expect(found.status).toBe(200);
    expect(await found.json()).toEqual({ id: "a", fields: { text: "text of a", title: "A" } });
    expect(found.headers.get("x-index-head-seq")).toBe("1");
    const sent = s.pool.calls.find((c) => c.path === "/v1/documents/get")!;
    expect(sent.body).toEqual({ tenant: s.tenant, index: s.index, version: 0, tail: { fromSeq: 0, toSeq: 1 }, id: "a" });
    expect(sent.worker).toBe(ownersFor(indexOwnerKey(s.tenant, s.index), WORKERS)[0]);

    const missing = await s.call(`/v1/indexes/${s.index}/documents/zzz`);
    expect(missing.status).toBe(404);
    expect((await s.call(`/v1/indexes/nowhere/documents/a`)).status).toBe(404);
    expect((await s.call(`/v1/indexes/${s.index}/documents/${"x".repeat(513)}`)).status).toBe(400);
  });

  it("404 on an index never written or built, without asking a worker", async () => {
    const s = await setup();
    expect((await s.call(`/v1/indexes/${s.index}/documents/a`)).status).toBe(404);
    expect(s.pool.calls).toEqual([]);
  });
});

/** The writer's pending counters, read inside the object. */
function counters(writer: DurableObjectStub<IndexWriter>): Promise<{ docs: number; batches: number; since: number | null }> {
  return runInDurableObject(writer, async (_instance, state) => ({
    docs: await pendingDocs(state.storage),
    batches: await pendingBatches(state.storage),
    since: await tailSince(state.storage),
  }));
}

describe("documents routes as mounted in the app", () => {
  it("authenticate before reading the body: 401 without a key (even for an oversized body), 403 without the scope", async () => {
    const huge = { method: "POST", headers: { "content-type": "application/json", "content-length": String(9 * 2 ** 20) }, body: "{}" };
    expect((await keyFetch("", "/v1/indexes/docs/documents", huge)).status).toBe(401);
    const searcher = await tenantWithKey(["search"]);
    const manager = await tenantWithKey(["manage"]);
    for (const t of [searcher, manager]) expect((await keyFetch(t.key, "/v1/indexes", jsonRequest("POST", { id: "docs" }))).status).toBe(t === manager ? 201 : 403);
    expect((await keyFetch(searcher.key, "/v1/indexes/docs/documents", jsonRequest("POST", { delete: ["a"] }))).status).toBe(403);
    expect((await keyFetch(manager.key, "/v1/indexes/docs/documents/a")).status).toBe(403);
    // The test pool's workers do not exist: a write is refused, never acknowledged.
    const refused = await keyFetch(manager.key, "/v1/indexes/docs/documents", jsonRequest("POST", { delete: ["a"] }));
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("1");
  });
});
