import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { errorOf, jsonRequest, keyFetch, tenantWithKey } from "../../test/support.ts";
import { completeBuild, insertBuild } from "../db/builds.ts";
import { failIndexVersion, reserveIndexVersion } from "../db/indexes.ts";
import { insertUpload } from "../db/uploads.ts";

describe("/v1/indexes", () => {
  it("creates, lists, gets and deletes an index", async () => {
    const { key } = await tenantWithKey();
    const created = await keyFetch(key, "/v1/indexes", jsonRequest("POST", { id: "docs" }));
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ id: "docs", status: "empty", activeVersion: null, docCount: 0 });
    expect((await keyFetch(key, "/v1/indexes", jsonRequest("POST", { id: "books" }))).status).toBe(201);

    const dup = await keyFetch(key, "/v1/indexes", jsonRequest("POST", { id: "docs" }));
    expect(dup.status).toBe(409);
    expect(await errorOf(dup)).toEqual({ code: "conflict", message: "index docs already exists" });

    const list = await (await keyFetch(key, "/v1/indexes")).json<{ indexes: Array<{ id: string }> }>();
    expect(list.indexes.map((i) => i.id)).toEqual(["books", "docs"]);

    const got = await keyFetch(key, "/v1/indexes/docs");
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({ id: "docs", status: "empty", versions: [], activeBuild: null });

    const deleted = await keyFetch(key, "/v1/indexes/docs", { method: "DELETE" });
    expect(deleted.status).toBe(200);
    expect(await deleted.json()).toMatchObject({ id: "docs", status: "deleted" });
    expect((await keyFetch(key, "/v1/indexes/docs")).status).toBe(404);
    expect((await keyFetch(key, "/v1/indexes/docs", { method: "DELETE" })).status).toBe(404);
    const afterDelete = await (await keyFetch(key, "/v1/indexes")).json<{ indexes: Array<{ id: string }> }>();
    expect(afterDelete.indexes.map((i) => i.id)).toEqual(["books"]);

    const reuse = await keyFetch(key, "/v1/indexes", jsonRequest("POST", { id: "docs" }));
    expect(reuse.status).toBe(409);
    expect((await errorOf(reuse)).message).toBe("index docs was deleted and its id cannot be reused yet");
  });

  it("isolates tenants: B can neither see, get nor delete A's index (404, never 403)", async () => {
    const a = await tenantWithKey();
    const b = await tenantWithKey();
    expect((await keyFetch(a.key, "/v1/indexes", jsonRequest("POST", { id: "private" }))).status).toBe(201);

    const list = await (await keyFetch(b.key, "/v1/indexes")).json<{ indexes: unknown[] }>();
    expect(list.indexes).toEqual([]);
    const get = await keyFetch(b.key, "/v1/indexes/private");
    expect(get.status).toBe(404);
    // Same answer as for an index that exists nowhere: nothing reveals that A has one.
    const nowhere = await keyFetch(b.key, "/v1/indexes/nowhere");
    expect((await errorOf(get)).code).toBe((await errorOf(nowhere)).code);
    expect((await keyFetch(b.key, "/v1/indexes/private", { method: "DELETE" })).status).toBe(404);

    // B may use the same id for its own index; A's is untouched.
    expect((await keyFetch(b.key, "/v1/indexes", jsonRequest("POST", { id: "private" }))).status).toBe(201);
    expect((await keyFetch(a.key, "/v1/indexes/private")).status).toBe(200);
  });

  it("shows versions, the active version and the build in progress", async () => {
    const { tenant, key } = await tenantWithKey();
    await keyFetch(key, "/v1/indexes", jsonRequest("POST", { id: "docs" }));
    const v1 = await reserveIndexVersion(env.DB, tenant, "docs");
    const v2 = await reserveIndexVersion(env.DB, tenant, "docs");
    expect([v1, v2]).toEqual([1, 2]);
    // Version 1 goes live the way a build does: its build succeeds (db/builds.ts completeBuild).
    await insertUpload(env.DB, { tenantId: tenant, id: "u1", indexId: "docs", files: [], expiresAt: new Date().toISOString() });
    const inserted = await insertBuild(env.DB, { tenantId: tenant, id: "b0", indexId: "docs", version: 1, uploadId: "u1" }, 2);
    if (!inserted.ok) throw new Error("inserting build b0 failed");
    expect(await completeBuild(env.DB, inserted.build, { docCount: 42, manifestKey: "m", shards: [{ id: "s0", bytes: 1, docCount: 42 }] }, {})).toBe(true);
    await failIndexVersion(env.DB, tenant, "docs", 2);
    const v3 = await reserveIndexVersion(env.DB, tenant, "docs");
    const now = new Date().toISOString();
    await env.DB.prepare("INSERT INTO builds (tenant_id, id, index_id, version, state, created_at, updated_at) VALUES (?1, 'b1', 'docs', ?2, 'encoding', ?3, ?3)")
      .bind(tenant, v3, now)
      .run();

    const detail = await (await keyFetch(key, "/v1/indexes/docs")).json<Record<string, unknown>>();
    expect(detail).toMatchObject({
      status: "ready",
      activeVersion: 1,
      docCount: 42,
      versions: [
        { version: 1, state: "ready", docCount: 42 },
        { version: 2, state: "failed" },
        { version: 3, state: "building" },
      ],
      activeBuild: { id: "b1", state: "encoding", version: 3 },
    });
    expect(await reserveIndexVersion(env.DB, tenant, "missing")).toBeNull();
  });

  it("allows one active build per index (partial unique index)", async () => {
    const { tenant, key } = await tenantWithKey();
    await keyFetch(key, "/v1/indexes", jsonRequest("POST", { id: "docs" }));
    const insert = (id: string, state: string) =>
      env.DB.prepare("INSERT INTO builds (tenant_id, id, index_id, version, state, created_at, updated_at) VALUES (?1, ?2, 'docs', 1, ?3, 'x', 'x')").bind(tenant, id, state).run();
    await insert("done", "succeeded");
    await insert("running", "queued");
    await expect(insert("second", "reading")).rejects.toThrow(/UNIQUE constraint failed/);
    await insert("old-failure", "failed");
  });

  it("validates ids and bodies", async () => {
    const { key } = await tenantWithKey();
    const badId = await keyFetch(key, "/v1/indexes", jsonRequest("POST", { id: "Has Spaces" }));
    expect(badId.status).toBe(400);
    expect((await errorOf(badId)).message).toMatch(/^body\.id: index id must match/);
    const missing = await keyFetch(key, "/v1/indexes", jsonRequest("POST", {}));
    expect((await errorOf(missing)).message).toMatch(/^body\.id: /);
    const badPath = await keyFetch(key, "/v1/indexes/UPPER");
    expect(badPath.status).toBe(400);
    expect((await errorOf(badPath)).message).toMatch(/^path\.id: index id must match/);
    const noType = await keyFetch(key, "/v1/indexes", { method: "POST", body: JSON.stringify({ id: "x" }) });
    expect(noType.status).toBe(415);
    expect((await errorOf(noType)).code).toBe("unsupported_media_type");
  });

  describe("filterable fields", () => {
    const fields = { section: "string", year: "number", tags: "string[]", free: "boolean" };

    it("are declared at creation and shown by create, get and list in the same form", async () => {
      const { key } = await tenantWithKey();
      const created = await keyFetch(key, "/v1/indexes", jsonRequest("POST", { id: "typed", fields }));
      expect(created.status).toBe(201);
      expect(await created.json()).toMatchObject({ id: "typed", fields });
      expect((await keyFetch(key, "/v1/indexes", jsonRequest("POST", { id: "plain" }))).status).toBe(201);
      const detail = await (await keyFetch(key, "/v1/indexes/typed")).json<Record<string, unknown>>();
      expect(detail.fields).toEqual(fields);
      expect((await (await keyFetch(key, "/v1/indexes/plain")).json<Record<string, unknown>>()).fields).toEqual({});
      const list = await (await keyFetch(key, "/v1/indexes")).json<{ indexes: Array<{ id: string; fields: unknown }> }>();
      expect(list.indexes.map((i) => [i.id, i.fields])).toEqual([
        ["plain", {}],
        ["typed", fields],
      ]);
    });

    it("are immutable: re-creating the index is a 409 and leaves the schema as it was", async () => {
      const { key } = await tenantWithKey();
      expect((await keyFetch(key, "/v1/indexes", jsonRequest("POST", { id: "typed", fields }))).status).toBe(201);
      expect((await keyFetch(key, "/v1/indexes", jsonRequest("POST", { id: "typed", fields: { other: "number" } }))).status).toBe(409);
      expect((await (await keyFetch(key, "/v1/indexes/typed")).json<Record<string, unknown>>()).fields).toEqual(fields);
      // No route changes an index: PATCH/PUT are not routes.
      expect((await keyFetch(key, "/v1/indexes/typed", jsonRequest("PATCH", { fields: {} }))).status).toBe(404);
    });

    it.each([
      ["an unknown type", { year: "int" }, /body\.fields\.year: field "year": type must be one of "string", "number", "boolean", "string\[\]", got "int"/],
      ["a non-string type", { year: 1 }, /body\.fields\.year: .*got 1/],
      ["a bad name", { "has space": "string" }, /body\.fields\.has space: field name "has space" must be/],
      ["the reserved name id", { id: "string" }, /field name "id" is reserved/],
      ["65 fields", Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`f${i}`, "string"])), /at most 64 fields may be declared, got 65/],
      ["not a map", ["year"], /body\.fields/],
      ["a __proto__ name", JSON.parse('{"__proto__": "string"}'), /field name "__proto__" is not allowed/],
      ["a constructor name", { constructor: "string" }, /field name "constructor" is not allowed/],
    ])("400 for %s, and no index is created", async (_what, bad, message) => {
      const { key } = await tenantWithKey();
      const response = await keyFetch(key, "/v1/indexes", jsonRequest("POST", { id: "typed", fields: bad }));
      expect(response.status).toBe(400);
      const error = await errorOf(response);
      expect(error.code).toBe("invalid_request");
      expect(error.message).toMatch(message);
      expect((await keyFetch(key, "/v1/indexes/typed")).status).toBe(404);
    });
  });
});
