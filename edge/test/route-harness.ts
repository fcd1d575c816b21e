/**
 * Helpers for the route tests of search, uploads, builds and q-nets: mount one router the way app.ts
 * does (under /v1/indexes unless told, behind app.ts's own error handlers) behind a stub API-key
 * check, so those tests exercise their routes without seeding D1 keys. app.test.ts covers the real wiring.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { useErrorHandlers } from "../src/app.ts";
import { createIndex } from "../src/db/indexes.ts";
import { createTenant } from "../src/db/tenants.ts";

/** Stands in for requireApiKey: the caller is `tenant` with every scope. */
export function stubAuth(tenant: string | (() => string)): MiddlewareHandler {
  return async (c, next) => {
    c.set("auth", { tenantId: typeof tenant === "string" ? tenant : tenant(), keyId: "key_test", scopes: ["search", "manage"] });
    await next();
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function testApp(router: Hono<any>, base = "/v1/indexes"): Hono<any> {
  const app = new Hono();
  app.route(base, router);
  return useErrorHandlers(app);
}

/** A fresh tenant with one index "docs" in the test D1 (real schema: edge/test/apply-migrations.ts). */
export async function seedIndex(db: D1Database): Promise<{ tenant: string; index: string }> {
  const tenant = `t-${crypto.randomUUID().slice(0, 8)}`;
  await createTenant(db, tenant, tenant);
  const created = await createIndex(db, tenant, "docs");
  if (!created.ok) throw new Error("seeding the index failed");
  return { tenant, index: "docs" };
}
