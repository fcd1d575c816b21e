/**
 * Middleware for tenant routes: authenticates the API key, rate-limits it, checks its scopes and
 * puts the tenant on the context (`c.get("auth")`). Route handlers then scope every query by
 * `auth.tenantId`, never by anything in the request.
 *
 *   router.post("/", requireApiKey("manage"), handler)           // needs manage
 *   router.get("/", requireApiKey("search", "manage"), handler)  // either scope
 */
import type { Context, MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { findApiKeyByHash, touchApiKey, type Scope } from "../db/api-keys.ts";
import type { EdgeEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { enforceRateLimit } from "../rate-limit/enforce.ts";
import { API_KEY_PATTERN, hashApiKey } from "./api-key.ts";
import { bearerToken } from "./bearer.ts";

const CHALLENGE = { "WWW-Authenticate": 'Bearer realm="hypencoder-search"' };
const unauthorized = (message: string) => new ApiError(401, "unauthorized", message, CHALLENGE);

/** Generic over the router's env, so routers with more bindings (S3, workers) need no cast. */
export function requireApiKey<E extends EdgeEnv = EdgeEnv>(...anyOf: Scope[]): MiddlewareHandler<E> {
  return createMiddleware<E>(async (c, next) => {
    const token = bearerToken(c.req.header("authorization"));
    if (token === undefined) throw unauthorized("missing API key: send Authorization: Bearer hyp_…");
    // Malformed tokens are refused without a database read.
    if (!API_KEY_PATTERN.test(token)) throw unauthorized("invalid API key");
    const key = await findApiKeyByHash(c.env.DB, await hashApiKey(token));
    if (key === null) throw unauthorized("invalid API key");
    if (key.revokedAt !== null) throw unauthorized("API key has been revoked");
    if (key.tenantDisabled) throw new ApiError(403, "tenant_disabled", "this tenant is disabled");

    // E extends EdgeEnv, so c is an EdgeEnv context; TypeScript cannot see that through the generic.
    const ctx = c as unknown as Context<EdgeEnv>;
    ctx.set("auth", { tenantId: key.tenantId, keyId: key.id, scopes: key.scopes });
    // Counted before the scope check: refused requests still cost a lookup.
    await enforceRateLimit(ctx, key.id);
    if (anyOf.length > 0 && !anyOf.some((scope) => key.scopes.includes(scope))) {
      const needed = anyOf.map((s) => `"${s}"`).join(" or ");
      throw new ApiError(403, "forbidden", `this API key lacks the ${needed} scope`);
    }
    runInBackground(c, touchApiKey(c.env.DB, key.id));
    await next();
  });
}

/** After the response where the runtime allows it (waitUntil); a failure is only logged. */
function runInBackground(c: { executionCtx: ExecutionContext }, work: Promise<unknown>): void {
  const logged = work.catch((error: unknown) => console.error("background task failed", error instanceof Error ? error.message : typeof error));
  try {
    c.executionCtx.waitUntil(logged);
  } catch {
    // No ExecutionContext (app.fetch called directly, as some tests do): the promise still runs.
  }
}
