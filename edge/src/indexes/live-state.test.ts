/** GET /v1/indexes/:id's living-index fields, from the owner worker or (no worker) from D1 and the writer. */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { IndexStateAnswer, IndexStateRequest } from "../../../shared/api/living-api.ts";
import { fakeWal, useFakePool } from "../../test/fake-wal.ts";
import { fakeWorkerPool } from "../../test/fake-workers.ts";
import { testApp } from "../../test/route-harness.ts";
import { jsonRequest, tenantWithKey } from "../../test/support.ts";
import { indexOwnerKey, ownersFor } from "../routing/rendezvous.ts";
import { parseWorkerPool } from "../routing/worker-pool.ts";
import { createIndexRoutes } from "./routes.ts";

const SECRET = (env as unknown as { WORKER_SIGNING_SECRET: string }).WORKER_SIGNING_SECRET;
const WORKERS = parseWorkerPool((env as unknown as { GPU_WORKERS: string }).GPU_WORKERS);

async function setup() {
  const { tenant, key } = await tenantWithKey();
  const pool = fakeWorkerPool(SECRET);
  fakeWal(pool);
  const app = testApp(createIndexRoutes({ fetcher: pool.fetcher }));
  const call = async (path: string, init: RequestInit = {}): Promise<Response> =>
    app.request(path, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${key}` } }, env);
  expect((await call("/v1/indexes", jsonRequest("POST", { id: "docs" }))).status).toBe(201);
  const writer = await useFakePool(env, tenant, "docs", pool);
  const detail = async () => (await call("/v1/indexes/docs")).json<Record<string, unknown>>();
  return { tenant, pool, call, writer, detail };
}

async function activateVersion(tenant: string, coveredSeq: number, shards: string[], docCount: number): Promise<void> {
  await env.DB.batch([
    env.DB.prepare("INSERT INTO index_versions (tenant_id, index_id, version, state, doc_count, shards, covered_seq, created_at) VALUES (?1, 'docs', 1, 'ready', ?2, ?3, ?4, ?5)").bind(
      tenant,
      docCount,
      JSON.stringify(shards.map((id) => ({ id }))),
      coveredSeq,
      new Date().toISOString(),
    ),
    env.DB.prepare("UPDATE indexes SET active_version = 1, status = 'ready', doc_count = ?2 WHERE tenant_id = ?1 AND id = 'docs'").bind(tenant, docCount),
  ]);
}

describe("index detail of a living index", () => {
  it("never built, never written: zeros, and no worker is asked", async () => {
    const s = await setup();
    expect(await s.detail()).toMatchObject({ docCount: 0, headSeq: 0, compactedSeq: 0, segments: 0, pendingDocs: 0, writer: { inDoubtSeq: null, pendingBatches: 0, tailSince: null } });
    expect(s.pool.calls).toEqual([]);
  });

  it("live counts from the index's owner worker (version + tail), seqs from D1", async () => {
    const s = await setup();
    await activateVersion(s.tenant, 0, ["s0", "s1"], 40);
    for (const body of [{ upsert: [{ id: "a", text: "x" }, { id: "b", text: "y" }], delete: [] }, { upsert: [], delete: ["c"] }]) {
      expect(await s.writer.write({ tenant: s.tenant, index: "docs", ...body })).toMatchObject({ ok: true });
    }
    s.pool.routes.set("POST /v1/index-state", () =>
      Response.json({
        docCount: 41,
        pendingDocs: 2,
        segments: [
          { id: "s0", docCount: 20, deletedDocs: 1 },
          { id: "s1", docCount: 20, deletedDocs: 0 },
        ],
        coveredSeq: 0,
        tailBatches: 2,
      } satisfies IndexStateAnswer),
    );
    const detail = await s.detail();
    expect(detail).toMatchObject({ activeVersion: 1, docCount: 41, headSeq: 2, compactedSeq: 0, segments: 2, pendingDocs: 2, stateSource: "worker" });
    expect(detail.writer).toMatchObject({ inDoubtSeq: null, pendingBatches: 2 });
    expect(typeof (detail.writer as { tailSince: unknown }).tailSince).toBe("string");
    expect(detail.versions).toEqual([expect.objectContaining({ version: 1, coveredSeq: 0, kind: "build" })]);
    const asked = s.pool.calls.find((c) => c.path === "/v1/index-state")!;
    expect(asked.body as unknown as IndexStateRequest).toEqual({ tenant: s.tenant, index: "docs", version: 1, tail: { fromSeq: 0, toSeq: 2 } });
    expect(asked.worker).toBe(ownersFor(indexOwnerKey(s.tenant, "docs"), WORKERS)[0]);
  });

  it("no worker answers: D1's figures and the writer's pending count, marked stateSource catalog", async () => {
    const s = await setup();
    await activateVersion(s.tenant, 0, ["s0", "s1", "s2"], 40);
    expect(await s.writer.write({ tenant: s.tenant, index: "docs", upsert: [{ id: "a", text: "x" }], delete: [] })).toMatchObject({ ok: true });
    for (const w of WORKERS) s.pool.behaviour.set(w, "down");
    expect(await s.detail()).toMatchObject({ docCount: 40, headSeq: 1, compactedSeq: 0, segments: 3, pendingDocs: 1, stateSource: "catalog" });
  });

  it("DELETE tells the index's writer, which refuses writes from then on", async () => {
    const s = await setup();
    expect((await s.call("/v1/indexes/docs", { method: "DELETE" })).status).toBe(200);
    expect((await s.writer.state()).deleted).toBe(true);
    expect(await s.writer.write({ tenant: s.tenant, index: "docs", upsert: [], delete: ["a"] })).toMatchObject({ ok: false, status: 404 });
  });
});
