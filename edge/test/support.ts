/** Helpers for the edge's workerd tests: admin and tenant calls through the real Worker (SELF). */
import { env, SELF } from "cloudflare:test";
import type { Scope } from "../src/db/api-keys.ts";

export const BASE = "https://edge.test";

/** Unique per call, so test files and tests never share tenants or indexes. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

export function jsonRequest(method: string, body?: unknown, headers: Record<string, string> = {}): RequestInit {
  return body === undefined
    ? { method, headers }
    : { method, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) };
}

export function adminFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${env.ADMIN_TOKEN}`);
  return SELF.fetch(`${BASE}${path}`, { ...init, headers });
}

export function keyFetch(key: string, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${key}`);
  return SELF.fetch(`${BASE}${path}`, { ...init, headers });
}

export interface TestTenant {
  tenant: string;
  key: string;
  keyId: string;
}

export async function createTenant(tenant = uniqueId("t")): Promise<string> {
  const response = await adminFetch("/v1/admin/tenants", jsonRequest("POST", { id: tenant, name: `Tenant ${tenant}` }));
  if (response.status !== 201) throw new Error(`creating tenant ${tenant}: ${response.status} ${await response.text()}`);
  return tenant;
}

export async function createKey(tenant: string, scopes: Scope[]): Promise<{ key: string; keyId: string }> {
  const response = await adminFetch(`/v1/admin/tenants/${tenant}/keys`, jsonRequest("POST", { scopes }));
  if (response.status !== 201) throw new Error(`creating key: ${response.status} ${await response.text()}`);
  const body = await response.json<{ id: string; key: string }>();
  return { key: body.key, keyId: body.id };
}

/** A fresh tenant with one key of the given scopes. */
export async function tenantWithKey(scopes: Scope[] = ["search", "manage"]): Promise<TestTenant> {
  const tenant = await createTenant();
  return { tenant, ...(await createKey(tenant, scopes)) };
}

export async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  const body = await response.json<{ error: { code: string; message: string } }>();
  return body.error;
}
