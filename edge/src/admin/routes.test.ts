import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { adminFetch, createTenant, errorOf, jsonRequest, keyFetch, uniqueId } from "../../test/support.ts";
import { hashApiKey } from "../auth/api-key.ts";

describe("admin API: tenants", () => {
  it("creates a tenant once; a second create is 409", async () => {
    const id = uniqueId("acme");
    const created = await adminFetch("/v1/admin/tenants", jsonRequest("POST", { id, name: "Acme" }));
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ id, name: "Acme", disabled: false });
    const again = await adminFetch("/v1/admin/tenants", jsonRequest("POST", { id, name: "Acme" }));
    expect(again.status).toBe(409);
    expect(await errorOf(again)).toEqual({ code: "conflict", message: `tenant ${id} already exists` });
  });

  it("rejects bad input with the field path, and unknown fields", async () => {
    const bad = await adminFetch("/v1/admin/tenants", jsonRequest("POST", { id: "Not Valid!", name: "" }));
    expect(bad.status).toBe(400);
    const error = await errorOf(bad);
    expect(error.code).toBe("invalid_request");
    expect(error.message).toContain("body.id: tenant id must match");
    expect(error.message).toContain("body.name: name must not be empty");

    const extra = await adminFetch("/v1/admin/tenants", jsonRequest("POST", { id: uniqueId("t"), name: "x", plan: "gold" }));
    expect(extra.status).toBe(400);
    expect((await errorOf(extra)).message).toMatch(/^body: Unrecognized key: "plan"/);
  });

  it("refuses requests without the admin token, or with a tenant key", async () => {
    const none = await adminFetch("/v1/admin/tenants", { method: "GET" });
    expect(none.status).toBe(404); // no such route: GET is not part of the admin API
    const anonymous = await keyFetch("wrong-token", "/v1/admin/tenants", jsonRequest("POST", { id: uniqueId("t"), name: "x" }));
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toContain("Bearer");
    expect(await errorOf(anonymous)).toEqual({ code: "unauthorized", message: "missing or invalid admin token" });
  });
});

describe("admin API: keys", () => {
  it("returns a key once, stores only its SHA-256, and lists keys without secrets", async () => {
    const tenant = await createTenant();
    const created = await adminFetch(`/v1/admin/tenants/${tenant}/keys`, jsonRequest("POST", { scopes: ["search"], name: "ci" }));
    expect(created.status).toBe(201);
    expect(created.headers.get("cache-control")).toBe("no-store");
    const body = await created.json<{ id: string; key: string; prefix: string; scopes: string[]; name: string }>();
    expect(body.key).toMatch(/^hyp_[A-Za-z0-9_-]{43}$/);
    expect(body).toMatchObject({ tenantId: tenant, name: "ci", scopes: ["search"], prefix: body.key.slice(0, 12), revokedAt: null });

    // The database holds the hash, never the key: search every column of the row for it.
    const row = await env.DB.prepare("SELECT * FROM api_keys WHERE id = ?1").bind(body.id).first<Record<string, unknown>>();
    expect(row!.key_hash).toBe(await hashApiKey(body.key));
    for (const value of Object.values(row!)) expect(String(value)).not.toContain(body.key);

    const listed = await adminFetch(`/v1/admin/tenants/${tenant}/keys`);
    expect(listed.status).toBe(200);
    const text = await listed.text();
    expect(text).not.toContain(body.key);
    expect(text).not.toContain(row!.key_hash as string);
    const { keys } = JSON.parse(text) as { keys: Array<Record<string, unknown>> };
    expect(keys).toHaveLength(1);
    expect(Object.keys(keys[0]!).sort()).toEqual(["createdAt", "id", "lastUsedAt", "name", "prefix", "revokedAt", "scopes", "tenantId"]);
  });

  it("revokes a key: it then gets 401, and revoking again keeps the first time", async () => {
    const tenant = await createTenant();
    const created = await adminFetch(`/v1/admin/tenants/${tenant}/keys`, jsonRequest("POST", { scopes: ["search"] }));
    const { id, key } = await created.json<{ id: string; key: string }>();
    expect((await keyFetch(key, "/v1/indexes")).status).toBe(200);

    const revoked = await adminFetch(`/v1/admin/tenants/${tenant}/keys/${id}`, { method: "DELETE" });
    expect(revoked.status).toBe(200);
    const { revokedAt } = await revoked.json<{ revokedAt: string }>();
    expect(revokedAt).toMatch(/^\d{4}-\d\d-\d\dT/);

    const refused = await keyFetch(key, "/v1/indexes");
    expect(refused.status).toBe(401);
    expect(await errorOf(refused)).toEqual({ code: "unauthorized", message: "API key has been revoked" });

    const again = await adminFetch(`/v1/admin/tenants/${tenant}/keys/${id}`, { method: "DELETE" });
    expect((await again.json<{ revokedAt: string }>()).revokedAt).toBe(revokedAt);
  });

  it("404s for unknown tenants and for another tenant's key id", async () => {
    const missing = uniqueId("nobody");
    const create = await adminFetch(`/v1/admin/tenants/${missing}/keys`, jsonRequest("POST", { scopes: ["search"] }));
    expect(create.status).toBe(404);
    expect(await errorOf(create)).toEqual({ code: "not_found", message: `tenant ${missing} not found` });
    expect((await adminFetch(`/v1/admin/tenants/${missing}/keys`)).status).toBe(404);

    const a = await createTenant();
    const b = await createTenant();
    const { id } = await (await adminFetch(`/v1/admin/tenants/${a}/keys`, jsonRequest("POST", { scopes: ["search"] }))).json<{ id: string }>();
    expect((await adminFetch(`/v1/admin/tenants/${b}/keys/${id}`, { method: "DELETE" })).status).toBe(404);
  });

  it("validates scopes and key ids", async () => {
    const tenant = await createTenant();
    const empty = await adminFetch(`/v1/admin/tenants/${tenant}/keys`, jsonRequest("POST", { scopes: [] }));
    expect(empty.status).toBe(400);
    expect((await errorOf(empty)).message).toBe("body.scopes: give at least one scope");
    const unknown = await adminFetch(`/v1/admin/tenants/${tenant}/keys`, jsonRequest("POST", { scopes: ["admin"] }));
    expect((await errorOf(unknown)).message).toMatch(/^body\.scopes\[0\]: /);
    const repeated = await adminFetch(`/v1/admin/tenants/${tenant}/keys`, jsonRequest("POST", { scopes: ["search", "search"] }));
    expect((await errorOf(repeated)).message).toBe("body.scopes: scopes must not repeat");
    const badId = await adminFetch(`/v1/admin/tenants/${tenant}/keys/not-a-key`, { method: "DELETE" });
    expect(badId.status).toBe(400);
    expect((await errorOf(badId)).message).toMatch(/^path\.keyId: key id must match/);
  });
});
