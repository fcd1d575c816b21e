/**
 * The Worker's bindings and per-request context variables, in one place so every router
 * (`new Hono<EdgeEnv>()`) sees the same types.
 */
import type { AuthContext } from "./auth/api-key.ts";
import type { RateLimiter } from "./rate-limit/rate-limiter.ts";

export interface EdgeBindings {
  SERVICE_NAME: string;
  /** D1: tenants, API keys, indexes, versions, uploads, builds (edge/migrations). */
  DB: D1Database;
  /** Operator secret for /v1/admin (a Wrangler secret; a plain binding in tests). Admin API is off when unset. */
  ADMIN_TOKEN?: string;
  /** Requests per minute per API key; a decimal string from [vars]. */
  RATE_LIMIT_PER_MINUTE?: string;
  /** One fixed-window counter per API key (edge/src/rate-limit/rate-limiter.ts). */
  RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
}

export interface EdgeVariables {
  /** Set by requireApiKey: who is calling, for which tenant, with which scopes. */
  auth: AuthContext;
}

export interface EdgeEnv {
  Bindings: EdgeBindings;
  Variables: EdgeVariables;
}
