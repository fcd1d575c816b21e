/**
 * Per-API-key rate limiting: a fixed one-minute window counted in a Durable Object, one object per
 * key (idFromName(keyId)).
 *
 * Why a Durable Object: Workers isolates share no memory and a key's requests land on many of
 * them, so an in-isolate token bucket would allow roughly limit × isolates. A Durable Object is a
 * single-threaded instance per key, so its count is exact. A D1 counter would also be exact,
 * but would add a write to the single D1 primary on every request of every tenant.
 *
 * Why in memory, not in DO storage: an object stays in memory while its key is busy, and is
 * evicted only after it has been idle; a busy key is the only case a limiter matters. If the
 * object is evicted or restarted the window starts over, so a key can briefly exceed its limit
 * (fail open). That is the right failure for a limiter, and it saves a storage write per request.
 */
import { DurableObject } from "cloudflare:workers";

export interface RateLimitDecision {
  allowed: boolean;
  limit: number;
  /** Requests left in this window after this one. */
  remaining: number;
  /** Whole seconds until the window resets (at least 1): the Retry-After value. */
  resetSeconds: number;
}

export class RateLimiter extends DurableObject {
  private windowStart = 0;
  private count = 0;

  /** Counts one request against `limit` per `windowMs`; a refused request is not counted. */
  hit(limit: number, windowMs: number = 60_000, now: number = Date.now()): RateLimitDecision {
    const windowStart = now - (now % windowMs);
    if (windowStart !== this.windowStart) {
      this.windowStart = windowStart;
      this.count = 0;
    }
    const resetSeconds = Math.max(1, Math.ceil((windowStart + windowMs - now) / 1000));
    if (this.count >= limit) return { allowed: false, limit, remaining: 0, resetSeconds };
    this.count += 1;
    return { allowed: true, limit, remaining: limit - this.count, resetSeconds };
  }
}
