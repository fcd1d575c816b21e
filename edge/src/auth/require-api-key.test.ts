import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE, errorOf, jsonRequest, keyFetch, tenantWithKey } from "../../test/support.ts";

describe("requireApiKey", () => {
  it("401s without a key, with a bearer challenge", async () => {
    const response = await SELF.fetch(`${BASE}/v1/indexes`);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toContain("Bearer");
    expect(await errorOf(response)).toEqual({ code: "unauthorized", message: "missing API key: send Authorization: Bearer hyp_…" });
  });

  it("401s for malformed and for unknown keys", async () => {
    const malformed = await keyFetch("hyp_short", "/v1/indexes");
    expect(malformed.status).toBe(401);
    expect(await errorOf(malformed)).toEqual({ code: "unauthorized", message: "invalid API key" });
    const unknown = await keyFetch(`hyp_${"A".repeat(43)}`, "/v1/indexes");
    expect(unknown.status).toBe(401);
    expect(await errorOf(unknown)).toEqual({ code: "unauthorized", message: "invalid API key" });
    const basic = await SELF.fetch(`${BASE}/v1/indexes`, { headers: { authorization: "Basic dXNlcjpwYXNz" } });
    expect(basic.status).toBe(401);
  });

  it("403s when the key lacks the route's scope, and allows either listed scope", async () => {
    const searchOnly = await tenantWithKey(["search"]);
    const create = await keyFetch(searchOnly.key, "/v1/indexes", jsonRequest("POST", { id: "docs" }));
    expect(create.status).toBe(403);
    expect(await errorOf(create)).toEqual({ code: "forbidden", message: 'this API key lacks the "manage" scope' });
    expect((await keyFetch(searchOnly.key, "/v1/indexes")).status).toBe(200);

    const manageOnly = await tenantWithKey(["manage"]);
    expect((await keyFetch(manageOnly.key, "/v1/indexes", jsonRequest("POST", { id: "docs" }))).status).toBe(201);
    expect((await keyFetch(manageOnly.key, "/v1/indexes")).status).toBe(200);
  });

  it("403s the keys of a disabled tenant", async () => {
    const { tenant, key } = await tenantWithKey();
    await env.DB.prepare("UPDATE tenants SET disabled = 1 WHERE id = ?1").bind(tenant).run();
    const response = await keyFetch(key, "/v1/indexes");
    expect(response.status).toBe(403);
    expect((await errorOf(response)).code).toBe("tenant_disabled");
  });

  it("records when a key was last used", async () => {
    const { key, keyId } = await tenantWithKey();
    expect((await keyFetch(key, "/v1/indexes")).status).toBe(200);
    // waitUntil work finishes after the response; poll briefly.
    let lastUsed: string | null = null;
    for (let i = 0; i < 50 && lastUsed === null; i++) {
      lastUsed = (await env.DB.prepare("SELECT last_used_at FROM api_keys WHERE id = ?1").bind(keyId).first<{ last_used_at: string | null }>())!.last_used_at;
      if (lastUsed === null) await new Promise((r) => setTimeout(r, 20));
    }
    expect(lastUsed).toMatch(/^\d{4}-/);
  });
});
