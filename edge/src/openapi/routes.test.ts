import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE } from "../../test/support.ts";
import { createApp } from "../app.ts";

interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string }>; responses: Record<string, unknown>; security: unknown[] }>>;
}

async function fetchDoc(): Promise<OpenApiDoc> {
  const response = await SELF.fetch(`${BASE}/v1/openapi.json`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("application/json");
  return JSON.parse(await response.text()) as OpenApiDoc;
}

const toOpenApiPath = (honoPath: string) => honoPath.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

describe("GET /v1/openapi.json", () => {
  it("is valid JSON listing every public route", async () => {
    const doc = await fetchDoc();
    expect(doc.openapi).toBe("3.1.0");
    const listed = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
    expect(listed).toEqual(
      expect.arrayContaining([
        "GET /healthz",
        "GET /readyz",
        "GET /",
        "GET /v1/openapi.json",
        "POST /v1/admin/tenants",
        "POST /v1/admin/tenants/{tenant}/keys",
        "GET /v1/admin/tenants/{tenant}/keys",
        "DELETE /v1/admin/tenants/{tenant}/keys/{keyId}",
        "POST /v1/indexes",
        "GET /v1/indexes",
        "GET /v1/indexes/{id}",
        "DELETE /v1/indexes/{id}",
        "POST /v1/indexes/{id}/uploads",
        "POST /v1/indexes/{id}/builds",
        "GET /v1/indexes/{id}/builds/{buildId}",
        "POST /v1/indexes/{id}/builds/{buildId}/cancel",
        "GET /v1/indexes/{id}/search",
        "POST /v1/indexes/{id}/search",
        "POST /v1/indexes/{id}/documents",
        "GET /v1/indexes/{id}/documents/{docId}",
        "POST /v1/qnet",
        "POST /v1/rerank",
      ]),
    );
  });

  it("documents every route the app serves (no drift), with its path parameters", async () => {
    const doc = await fetchDoc();
    const served = createApp()
      .routes.filter((r) => r.method !== "ALL")
      .map((r) => ({ method: r.method.toLowerCase(), path: toOpenApiPath(r.path) }));
    expect(served.length).toBeGreaterThan(5);
    for (const { method, path } of served) {
      const operation = doc.paths[path]?.[method];
      expect(operation, `${method.toUpperCase()} ${path} is not in openapi.json`).toBeDefined();
      const documented = (operation!.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name).sort();
      const inTemplate = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      expect(documented, `${method} ${path} path parameters`).toEqual(inTemplate);
    }
  });

  it("derives bodies from the zod schemas and adds the shared error responses", async () => {
    const doc = await fetchDoc();
    const create = doc.paths["/v1/indexes"]!.post as unknown as {
      requestBody: { content: { "application/json": { schema: { properties: { id: { pattern: string } }; additionalProperties: boolean } } } };
      responses: Record<string, unknown>;
      security: unknown[];
    };
    const schema = create.requestBody.content["application/json"].schema;
    expect(schema.properties.id.pattern).toBe("^[a-z0-9][a-z0-9_-]{0,62}$");
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(create.responses).sort()).toEqual(["201", "400", "401", "403", "409", "413", "415", "429", "500"]);
    expect(create.security).toEqual([{ apiKey: [] }]);
  });

  it("documents filterable fields at creation and the search filter (body and query string)", async () => {
    const doc = JSON.parse(JSON.stringify(await fetchDoc())) as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, { additionalProperties?: unknown; description?: string }> } }> }; parameters?: Array<{ name: string; description?: string }> }>>;
    };
    const create = doc.paths["/v1/indexes"]!.post!.requestBody!.content["application/json"]!.schema;
    expect(create.properties.fields!.additionalProperties).toEqual({ type: "string", enum: ["string", "number", "boolean", "string[]"] });
    const search = doc.paths["/v1/indexes/{id}/search"]!;
    expect(search.post!.requestBody!.content["application/json"]!.schema.properties.filter!.description).toMatch(/contains is for string\[\] fields/);
    expect(JSON.stringify(search.get!.parameters!.find((p) => p.name === "filter"))).toMatch(/URL-encoded JSON/);
  });
});
