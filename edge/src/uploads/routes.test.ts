import { createExecutionContext, env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { seedIndex, stubAuth, testApp } from "../../test/route-harness.ts";
import { createUploadRoutes } from "./routes.ts";
import { freshBucket, hexDigest } from "../../test/s3.ts";

describe("POST /v1/indexes/:id/uploads", () => {
  let bucket: string;
  let tenant: string;
  const app = () => testApp(createUploadRoutes({ auth: stubAuth(() => tenant) }));
  const call = (path: string, body: unknown, contentType = "application/json") =>
    app().request(path, { method: "POST", headers: { "content-type": contentType }, body: typeof body === "string" ? body : JSON.stringify(body) }, { ...env, S3_BUCKET: bucket }, createExecutionContext());

  beforeAll(async () => {
    ({ bucket } = await freshBucket());
    ({ tenant } = await seedIndex(env.DB));
  });

  it("returns presigned PUTs under the tenant's upload prefix that a plain fetch can use", async () => {
    const data = new TextEncoder().encode('{"id":"1","text":"a"}\n{"id":"2","text":"b"}\n');
    const response = await call("/v1/indexes/docs/uploads", {
      files: [
        { name: "part-1.jsonl", bytes: data.length, md5: await hexDigest("MD5", data), sha256: await hexDigest("SHA-256", data) },
        { name: "part-2.jsonl.gz", bytes: 10 },
      ],
    });
    expect(response.status).toBe(201);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const body = await response.json<{ id: string; expiresAt: string; files: Array<{ name: string; key: string; url: string; method: string; headers: Record<string, string> }> }>();
    expect(body.id).toMatch(/^u[0-9a-f]{24}$/);
    expect(Date.parse(body.expiresAt) - Date.now()).toBeGreaterThan(14 * 60_000);
    expect(body.files.map((f) => f.key)).toEqual([`tenants/${tenant}/uploads/${body.id}/part-1.jsonl`, `tenants/${tenant}/uploads/${body.id}/part-2.jsonl.gz`]);
    expect(body.files[0]!.url).toContain(`/${bucket}/tenants/${tenant}/uploads/${body.id}/part-1.jsonl?`);
    const put = await fetch(body.files[0]!.url, { method: "PUT", headers: body.files[0]!.headers, body: data });
    expect(put.status).toBe(200);
    const row = await env.DB.prepare("SELECT index_id, files FROM uploads WHERE tenant_id = ?1 AND id = ?2").bind(tenant, body.id).first<{ index_id: string; files: string }>();
    expect(row!.index_id).toBe("docs");
    expect(JSON.parse(row!.files)[0]).toMatchObject({ name: "part-1.jsonl", bytes: data.length });
  });

  it.each([
    ["no files", { files: [] }],
    ["too many files", { files: Array.from({ length: 101 }, (_, i) => ({ name: `f${i}.jsonl`, bytes: 1 })) }],
    ["a path in the name", { files: [{ name: "../other/x.jsonl", bytes: 1 }] }],
    ["a slash in the name", { files: [{ name: "a/b.jsonl", bytes: 1 }] }],
    ["a hidden name", { files: [{ name: ".env", bytes: 1 }] }],
    ["a long name", { files: [{ name: `${"a".repeat(129)}`, bytes: 1 }] }],
    ["duplicate names", { files: [{ name: "a.jsonl", bytes: 1 }, { name: "a.jsonl", bytes: 2 }] }],
    ["zero bytes", { files: [{ name: "a.jsonl", bytes: 0 }] }],
    ["more than 5 GiB", { files: [{ name: "a.jsonl", bytes: 5 * 2 ** 30 + 1 }] }],
    ["a bad sha256", { files: [{ name: "a.jsonl", bytes: 1, sha256: "XYZ" }] }],
    ["an unknown field", { files: [{ name: "a.jsonl", bytes: 1, mode: "public" }] }],
  ])("refuses %s (400)", async (_name, body) => {
    const response = await call("/v1/indexes/docs/uploads", body);
    expect(response.status).toBe(400);
    expect((await response.json<{ error: { code: string } }>()).error.code).toBe("invalid_request");
  });

  it("404 for an unknown index, 415 for a non-JSON body", async () => {
    expect((await call("/v1/indexes/nope/uploads", { files: [{ name: "a.jsonl", bytes: 1 }] })).status).toBe(404);
    expect((await call("/v1/indexes/docs/uploads", "files=1", "application/x-www-form-urlencoded")).status).toBe(415);
  });

  it("503 when storage is not configured", async () => {
    const response = await app().request(
      "/v1/indexes/docs/uploads",
      { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ files: [{ name: "a.jsonl", bytes: 1 }] }) },
      { ...env, S3_BUCKET: undefined, S3_ACCESS_KEY_ID: undefined },
      createExecutionContext(),
    );
    expect(response.status).toBe(503);
    expect(await response.text()).not.toContain("hypencoder-test");
  });
});
