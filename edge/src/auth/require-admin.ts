/**
 * Middleware for the operator API (/v1/admin): `Authorization: Bearer <ADMIN_TOKEN>`.
 * ADMIN_TOKEN is a Wrangler secret (`wrangler secret put ADMIN_TOKEN`); without it the admin API is off.
 */
import { createMiddleware } from "hono/factory";
import { sha256Hex, timingSafeEqual } from "../../../shared/api/signing.ts";
import type { EdgeEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { bearerToken } from "./bearer.ts";

const encoder = new TextEncoder();

/**
 * Constant-time comparison of two secrets of any length: comparing their SHA-256 digests makes
 * the inputs equal-length, so neither content nor length leaks through timing.
 */
export async function secretsEqual(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([sha256Hex(encoder.encode(given)), sha256Hex(encoder.encode(expected))]);
  return timingSafeEqual(encoder.encode(a), encoder.encode(b));
}

export const requireAdmin = createMiddleware<EdgeEnv>(async (c, next) => {
  const expected = c.env.ADMIN_TOKEN;
  if (!expected) throw new ApiError(503, "admin_disabled", "the admin API is disabled: ADMIN_TOKEN is not configured");
  const token = bearerToken(c.req.header("authorization"));
  if (token === undefined || !(await secretsEqual(token, expected))) {
    throw new ApiError(401, "unauthorized", "missing or invalid admin token", { "WWW-Authenticate": 'Bearer realm="hypencoder-admin"' });
  }
  await next();
});
