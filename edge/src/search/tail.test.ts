/**
 * Search over a living index: the WAL tail as the pseudo-shard "tail" (strong) or not at all
 * (eventual), version 0 (never built), and a cache that never outlives a write.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { TAIL_SHARD_ID } from "../../../shared/api/living-api.ts";
import type { SearchRequest } from "../../../shared/api/worker-api.ts";
import { fakeWorkerPool } from "../../test/fake-workers.ts";
import { seedIndex, stubAuth, testApp } from "../../test/route-harness.ts";
import { getActiveVersion } from "../db/indexes.ts";
import { indexOwnerKey, ownersFor } from "../routing/rendezvous.ts";
import { parseWorkerPool } from "../routing/worker-pool.ts";
import type { ActiveVersion, SearchCatalog } from "./catalog.ts";
import { createSearchRoutes } from "./routes.ts";

const SECRET = (env as unknown as { WORKER_SIGNING_SECRET: string }).WORKER_SIGNING_SECRET;
const WORKERS = parseWorkerPool((env as unknown as { GPU_WORKERS: string }).GPU_WORKERS);
const SHARDS = ["s0", "s1", "s2"];

function setup(initial: Partial<ActiveVersion> = {}) {
  const pool = fakeWorkerPool(SECRET);
  const active: ActiveVersion = { version: 3, shards: SHARDS, coveredSeq: 10, headSeq: 10, ...initial };
  const catalog: SearchCatalog = async () => ({ ok: true, active: { ...active } });
  const app = testApp(createSearchRoutes({ fetcher: pool.fetcher, catalog, auth: stubAuth("acme") }));
  const call = async (path: string, init?: RequestInit) => {
    const ctx = createExecutionContext();
    const response = await app.request(path, init, env, ctx);
    const text = await response.text();
    await waitOnExecutionContext(ctx);
    return { response, json: () => JSON.parse(text) };
  };
  const sent = () => pool.calls.filter((c) => c.path === "/v1/search").map((c) => ({ worker: c.worker, body: c.body as SearchRequest }));
  return { pool, active, call, sent };
}

const q = () => `query ${crypto.randomUUID()}`;

describe("strong and eventual searches", () => {
  it("strong (the default): every worker gets the tail range, and the tail shard goes to the index's owner", async () => {
    const s = setup({ headSeq: 14 });
    const { response, json } = await s.call(`/v1/indexes/docs/search?q=${encodeURIComponent(q())}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("x-index-head-seq")).toBe("14");
    expect(response.headers.get("x-index-version")).toBe("3");
    const sent = s.sent();
    for (const { body } of sent) expect(body.tail).toEqual({ fromSeq: 10, toSeq: 14 });
    expect(sent.flatMap((c) => c.body.shards!).sort()).toEqual([...SHARDS, TAIL_SHARD_ID].sort());
    const tailWorker = sent.find((c) => c.body.shards!.includes(TAIL_SHARD_ID))!.worker;
    expect(tailWorker).toBe(ownersFor(indexOwnerKey("acme", "docs"), WORKERS)[0]);
    expect(json().hits.some((h: { id: string }) => h.id.startsWith(`${TAIL_SHARD_ID}-`))).toBe(true);
  });

  it("eventual: no tail range and no tail shard (GET, POST JSON and msgpack)", async () => {
    const s = setup({ headSeq: 14 });
    const get = await s.call(`/v1/indexes/docs/search?q=${encodeURIComponent(q())}&consistency=eventual`);
    expect(get.response.status).toBe(200);
    expect(get.response.headers.get("x-index-head-seq")).toBe("10");
    const post = await s.call("/v1/indexes/docs/search", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: q(), consistency: "eventual" }) });
    expect(post.response.status).toBe(200);
    const { encodeFrame } = await import("../../../shared/api/frames.ts");
    const packed = encodeFrame({ query: q(), consistency: "eventual" } as never);
    expect((await s.call("/v1/indexes/docs/search", { method: "POST", headers: { "content-type": "application/msgpack" }, body: packed })).response.status).toBe(200);
    for (const { body } of s.sent()) {
      expect(body.tail).toBeUndefined();
      expect(body.shards).not.toContain(TAIL_SHARD_ID);
    }
  });

  it("strong with nothing written since the version: no tail", async () => {
    const s = setup();
    await s.call(`/v1/indexes/docs/search?q=${encodeURIComponent(q())}&consistency=strong`);
    for (const { body } of s.sent()) {
      expect(body.tail).toBeUndefined();
      expect(body.shards).not.toContain(TAIL_SHARD_ID);
    }
  });

  it.each([["consistency=fast"], ["consistency=1"]])("400 for %s", async (query) => {
    const s = setup();
    const { response, json } = await s.call(`/v1/indexes/docs/search?q=x&${query}`);
    expect(response.status).toBe(400);
    expect(json().error.message).toMatch(/consistency/);
  });

  it("the tail shard fails over to the index's next owner", async () => {
    const s = setup({ headSeq: 12 });
    const owners = ownersFor(indexOwnerKey("acme", "docs"), WORKERS);
    s.pool.behaviour.set(owners[0]!, "down");
    const { json } = await s.call(`/v1/indexes/docs/search?q=${encodeURIComponent(q())}`);
    expect(json().partial).toBe(false);
    const tailCalls = s.sent().filter((c) => c.body.shards!.includes(TAIL_SHARD_ID)).map((c) => c.worker);
    expect(tailCalls).toEqual([owners[0], owners[1]]);
  });

  it("version 0 (written, never built) searches the tail alone; eventual too, since it is all there is", async () => {
    const s = setup({ version: 0, shards: [], coveredSeq: 0, headSeq: 3 });
    for (const consistency of ["strong", "eventual"]) {
      const { response, json } = await s.call(`/v1/indexes/docs/search?q=${encodeURIComponent(q())}&consistency=${consistency}`);
      expect(response.status).toBe(200);
      expect(json().version).toBe(0);
    }
    for (const { body } of s.sent()) expect(body).toMatchObject({ version: 0, shards: [TAIL_SHARD_ID], tail: { fromSeq: 0, toSeq: 3 } });
    expect(s.sent()).toHaveLength(2);
  });

  it("a version without segments and no writes after it answers empty without a worker", async () => {
    const s = setup({ version: 4, shards: [], coveredSeq: 9, headSeq: 9 });
    const { response, json } = await s.call(`/v1/indexes/docs/search?q=${encodeURIComponent(q())}`);
    expect(response.status).toBe(200);
    expect(json()).toMatchObject({ hits: [], partial: false, version: 4 });
    expect(s.pool.calls).toEqual([]);
  });
});

describe("the result cache and writes", () => {
  it("a write (a higher head seq) never serves an answer cached before it; eventual answers are keyed without it", async () => {
    const s = setup({ headSeq: 11 });
    const path = `/v1/indexes/docs/search?q=${encodeURIComponent(q())}`;
    expect((await s.call(path)).response.headers.get("x-cache")).toBe("MISS");
    expect((await s.call(path)).response.headers.get("x-cache")).toBe("HIT");
    s.active.headSeq = 12;
    const after = await s.call(path);
    expect(after.response.headers.get("x-cache")).toBe("MISS");
    expect(after.response.headers.get("x-index-head-seq")).toBe("12");
    expect(s.sent().at(-1)!.body.tail).toEqual({ fromSeq: 10, toSeq: 12 });

    const eventual = `${path}&consistency=eventual`;
    expect((await s.call(eventual)).response.headers.get("x-cache")).toBe("MISS");
    s.active.headSeq = 13;
    expect((await s.call(eventual)).response.headers.get("x-cache")).toBe("HIT");
    // Strong and eventual never share an entry.
    s.active.headSeq = 10;
    expect((await s.call(path)).response.headers.get("x-cache")).toBe("MISS");
  });
});

describe("the D1 catalog", () => {
  it("reports head_seq and the active version's covered_seq; version 0 once written; not ready before", async () => {
    const { tenant, index } = await seedIndex(env.DB);
    expect(await getActiveVersion(env.DB, tenant, index)).toEqual({ ok: false, reason: "not_ready" });
    await env.DB.prepare("UPDATE indexes SET head_seq = 5 WHERE tenant_id = ?1 AND id = ?2").bind(tenant, index).run();
    expect(await getActiveVersion(env.DB, tenant, index)).toEqual({ ok: true, active: { version: 0, shards: [], coveredSeq: 0, headSeq: 5 } });
    await env.DB.batch([
      env.DB.prepare("INSERT INTO index_versions (tenant_id, index_id, version, state, shards, covered_seq, created_at) VALUES (?1, ?2, 1, 'ready', ?3, 4, ?4)").bind(tenant, index, JSON.stringify([{ id: "s00000" }]), new Date().toISOString()),
      env.DB.prepare("UPDATE indexes SET active_version = 1, status = 'ready' WHERE tenant_id = ?1 AND id = ?2").bind(tenant, index),
    ]);
    expect(await getActiveVersion(env.DB, tenant, index)).toEqual({ ok: true, active: { version: 1, shards: ["s00000"], coveredSeq: 4, headSeq: 5 } });
    expect(await getActiveVersion(env.DB, tenant, "nowhere")).toEqual({ ok: false, reason: "not_found" });
  });
});
