/** Applies the per-key limit (RateLimiter) to a request: 429 with Retry-After when over it. */
import type { Context } from "hono";
import { z } from "zod";
import type { EdgeEnv } from "../env.ts";
import { ApiError } from "../errors.ts";

export const DEFAULT_RATE_LIMIT_PER_MINUTE = 600;

/** RATE_LIMIT_PER_MINUTE: a positive integer, or 0 to switch limiting off (local development). */
const limitSchema = z.coerce.number().int().min(0);

export function rateLimitPerMinute(value: string | undefined): number {
  if (value === undefined || value.trim() === "") return DEFAULT_RATE_LIMIT_PER_MINUTE;
  const parsed = limitSchema.safeParse(value);
  // A misconfiguration must be loud, not silently fall back to some other limit.
  if (!parsed.success) throw new Error(`RATE_LIMIT_PER_MINUTE must be a non-negative integer, got ${JSON.stringify(value)}`);
  return parsed.data;
}

export async function enforceRateLimit(c: Context<EdgeEnv>, keyId: string): Promise<void> {
  const limit = rateLimitPerMinute(c.env.RATE_LIMIT_PER_MINUTE);
  if (limit === 0) return;
  const limiter = c.env.RATE_LIMITER.get(c.env.RATE_LIMITER.idFromName(keyId));
  const decision = await limiter.hit(limit);
  c.header("RateLimit-Limit", String(decision.limit));
  c.header("RateLimit-Remaining", String(decision.remaining));
  c.header("RateLimit-Reset", String(decision.resetSeconds));
  if (!decision.allowed) {
    throw new ApiError(429, "rate_limited", `rate limit of ${limit} requests per minute exceeded for this API key; retry in ${decision.resetSeconds} s`, {
      "Retry-After": String(decision.resetSeconds),
    });
  }
}
