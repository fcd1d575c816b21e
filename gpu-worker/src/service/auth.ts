/**
 * Signature check for every /v1 route: reads the raw body once (the signature covers its hash),
 * verifies the edge's HMAC, and puts the signed tenant on the context. Routes then only ever act for
 * that tenant (request-body.ts refuses a body naming another one).
 */
import type { MiddlewareHandler } from "hono";
import { SIGNATURE_HEADERS, verifyRequest } from "../../../shared/api/signing.ts";
import { ID_PATTERN } from "../../../shared/api/worker-api.ts";
import type { ServiceEnv } from "./context.ts";
import { ApiError } from "./errors.ts";
import { readBody } from "./request-body.ts";

export interface AuthOptions {
  /** Verifying secrets (several during rotation). Empty only with `insecureDev`. */
  secrets: readonly string[];
  /** Local development without secrets: the tenant header is trusted unsigned. */
  insecureDev: boolean;
  maxBodyBytes: number;
  windowSeconds?: number;
}

export function signatureAuth(options: AuthOptions): MiddlewareHandler<ServiceEnv> {
  if (options.secrets.length === 0 && !options.insecureDev) throw new Error("signatureAuth needs at least one secret");
  return async (c, next) => {
    const body = await readBody(c.req.raw, options.maxBodyBytes);
    let tenant: string;
    if (options.secrets.length === 0) {
      tenant = c.req.header(SIGNATURE_HEADERS.tenant) ?? "";
      if (!ID_PATTERN.test(tenant)) throw new ApiError(401, "unauthorized", `insecure dev mode still needs a valid ${SIGNATURE_HEADERS.tenant} header`);
    } else {
      const url = new URL(c.req.url);
      const verdict = await verifyRequest({
        secrets: options.secrets,
        method: c.req.method,
        path: url.pathname + url.search,
        headers: c.req.raw.headers,
        body,
        windowSeconds: options.windowSeconds,
      });
      if (!verdict.ok) throw new ApiError(401, "unauthorized", verdict.reason);
      tenant = verdict.tenant;
    }
    c.set("tenant", tenant);
    c.set("body", body);
    await next();
  };
}
