/**
 * The search, upload and build routers as mounted by app.ts (through SELF): real API keys and
 * scopes, real D1. The GPU_WORKERS of the test bindings do not exist, so a search reaches none and
 * must come back flagged partial, never as a silently empty answer.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { errorOf, jsonRequest, keyFetch, tenantWithKey } from "../../test/support.ts";

async function indexWithVersion(key: string, tenant: string, shards: string[]): Promise<void> {
  expect((await keyFetch(key, "/v1/indexes", jsonRequest("POST", { id: "docs" }))).status).toBe(201);
  if (shards.length === 0) return;
  await env.DB.batch([
    env.DB.prepare("INSERT INTO index_versions (tenant_id, index_id, version, state, shards, created_at) VALUES (?1, 'docs', 1, 'ready', ?2, ?3)").bind(tenant, JSON.stringify(shards.map((id) => ({ id }))), new Date().toISOString()),
    env.DB.prepare("UPDATE indexes SET active_version = 1, status = 'ready' WHERE tenant_id = ?1 AND id = 'docs'").bind(tenant),
  ]);
}

describe("search, uploads and builds as mounted in the app", () => {
  it("needs an API key, and the manage scope for uploads and builds", async () => {
    const anonymous = await keyFetch("", "/v1/indexes/docs/search?q=x");
    expect(anonymous.status).toBe(401);
    const { tenant, key } = await tenantWithKey(["search"]);
    const { key: manager } = await tenantWithKey(["manage"]);
    void tenant;
    expect((await keyFetch(key, "/v1/indexes/docs/uploads", jsonRequest("POST", { files: [{ name: "a.jsonl", bytes: 1 }] }))).status).toBe(403);
    expect((await keyFetch(key, "/v1/indexes/docs/builds", jsonRequest("POST", { uploadId: "u000000000000000000000000" }))).status).toBe(403);
    expect((await keyFetch(manager, "/v1/indexes/docs/search?q=x")).status).toBe(403);
  });

  it("404 for another tenant's index, 409 before the first build", async () => {
    const a = await tenantWithKey();
    const b = await tenantWithKey();
    await indexWithVersion(a.key, a.tenant, []);
    const own = await keyFetch(a.key, "/v1/indexes/docs/search?q=x");
    expect(own.status).toBe(409);
    expect((await errorOf(own)).code).toBe("index_not_ready");
    expect((await keyFetch(b.key, "/v1/indexes/docs/search?q=x")).status).toBe(404);
  });

  it("with no reachable worker the answer is a 503 workers_unavailable with Retry-After, never an empty 200", async () => {
    const { tenant, key } = await tenantWithKey();
    await indexWithVersion(key, tenant, ["s0", "s1", "s2"]);
    const response = await keyFetch(key, "/v1/indexes/docs/search?q=hello");
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("2");
    expect(await errorOf(response)).toMatchObject({ code: "workers_unavailable" });
    // Nothing was cached: the next request tries the workers again.
    expect((await keyFetch(key, "/v1/indexes/docs/search?q=hello")).status).toBe(503);
  });
});
