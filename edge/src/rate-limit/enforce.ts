/** Applies the per-key limit (RateLimiter) to a request: 429 with Retry-After when over it. */
import type { Context } from "hono";
import type { EdgeEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { integerSetting } from "../integer-setting.ts";

export const DEFAULT_RATE_LIMIT_PER_MINUTE = 600;

/** RATE_LIMIT_PER_MINUTE: a positive integer, or 0 to switch limiting off (local development). */
export function rateLimitPerMinute(value: string | undefined): number {
  return integerSetting("RATE_LIMIT_PER_MINUTE", value, DEFAULT_RATE_LIMIT_PER_MINUTE, { min: 0 });
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
