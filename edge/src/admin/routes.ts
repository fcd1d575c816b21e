/**
 * The operator API: tenants and their API keys. Behind ADMIN_TOKEN (requireAdmin), and not rate
 * limited per key (the operator has no key). Secrets are returned once, on creation, and never logged.
 */
import { Hono } from "hono";
import type { z } from "zod";
import { generateApiKey } from "../auth/api-key.ts";
import { requireAdmin } from "../auth/require-admin.ts";
import { insertApiKey, listApiKeys, revokeApiKey, type ApiKeyRecord } from "../db/api-keys.ts";
import { createTenant, getTenant } from "../db/tenants.ts";
import type { EdgeEnv } from "../env.ts";
import { ApiError, notFound } from "../errors.ts";
import { parseInput, readJson } from "../http/validate.ts";
import type { RouteDoc } from "../openapi/route-doc.ts";
import {
  apiKeyResponse,
  createdKeyResponse,
  createKeyBody,
  createTenantBody,
  keyListResponse,
  keyParams,
  tenantParams,
  tenantResponse,
} from "./schemas.ts";

type ApiKeyResponse = z.infer<typeof apiKeyResponse>;
const keyView = (key: ApiKeyRecord): ApiKeyResponse => ({ ...key, scopes: [...key.scopes] });

export const adminRoutes = new Hono<EdgeEnv>();
adminRoutes.use("*", requireAdmin);

adminRoutes.post("/tenants", async (c) => {
  const body = await readJson(c, createTenantBody);
  const tenant = await createTenant(c.env.DB, body.id, body.name);
  if (tenant === null) throw new ApiError(409, "conflict", `tenant ${body.id} already exists`);
  return c.json<z.infer<typeof tenantResponse>>(tenant, 201);
});

adminRoutes.post("/tenants/:tenant/keys", async (c) => {
  const { tenant } = parseInput(tenantParams, c.req.param(), "path");
  const body = await readJson(c, createKeyBody);
  if ((await getTenant(c.env.DB, tenant)) === null) throw notFound(`tenant ${tenant}`);
  const generated = await generateApiKey();
  const record = await insertApiKey(c.env.DB, { id: generated.id, tenantId: tenant, name: body.name ?? null, keyHash: generated.keyHash, prefix: generated.prefix, scopes: body.scopes });
  // Caches must never keep the one response that holds the secret.
  c.header("Cache-Control", "no-store");
  return c.json<z.infer<typeof createdKeyResponse>>({ ...keyView(record), key: generated.key }, 201);
});

adminRoutes.get("/tenants/:tenant/keys", async (c) => {
  const { tenant } = parseInput(tenantParams, c.req.param(), "path");
  if ((await getTenant(c.env.DB, tenant)) === null) throw notFound(`tenant ${tenant}`);
  const keys = await listApiKeys(c.env.DB, tenant);
  return c.json<z.infer<typeof keyListResponse>>({ keys: keys.map(keyView) });
});

adminRoutes.delete("/tenants/:tenant/keys/:keyId", async (c) => {
  const { tenant, keyId } = parseInput(keyParams, c.req.param(), "path");
  const revoked = await revokeApiKey(c.env.DB, tenant, keyId);
  if (revoked === null) throw notFound(`API key ${keyId} of tenant ${tenant}`);
  return c.json<ApiKeyResponse>(keyView(revoked));
});

export const adminRouteDocs: RouteDoc[] = [
  {
    method: "post",
    path: "/v1/admin/tenants",
    summary: "Create a tenant",
    tags: ["admin"],
    auth: "admin",
    body: createTenantBody,
    responses: { 201: { description: "The new tenant", schema: tenantResponse }, 409: { description: "The tenant id is taken" } },
  },
  {
    method: "post",
    path: "/v1/admin/tenants/{tenant}/keys",
    summary: "Create an API key for a tenant (the key is returned once)",
    tags: ["admin"],
    auth: "admin",
    params: tenantParams,
    body: createKeyBody,
    responses: { 201: { description: "The new key, with its secret", schema: createdKeyResponse }, 404: { description: "No such tenant" } },
  },
  {
    method: "get",
    path: "/v1/admin/tenants/{tenant}/keys",
    summary: "List a tenant's API keys (without secrets)",
    tags: ["admin"],
    auth: "admin",
    params: tenantParams,
    responses: { 200: { description: "The tenant's keys, revoked ones included", schema: keyListResponse }, 404: { description: "No such tenant" } },
  },
  {
    method: "delete",
    path: "/v1/admin/tenants/{tenant}/keys/{keyId}",
    summary: "Revoke an API key (idempotent)",
    tags: ["admin"],
    auth: "admin",
    params: keyParams,
    responses: { 200: { description: "The revoked key", schema: apiKeyResponse }, 404: { description: "No such key for this tenant" } },
  },
];
