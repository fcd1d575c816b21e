import { createExecutionContext, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE, errorOf, tenantWithKey } from "../../test/support.ts";
import { createApp } from "../app.ts";
import { DEFAULT_RATE_LIMIT_PER_MINUTE, rateLimitPerMinute } from "./enforce.ts";

describe("RateLimiter (Durable Object)", () => {
  it("counts a fixed window and resets at the next one", async () => {
    const limiter = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(`unit-${crypto.randomUUID()}`));
    const t0 = 1_700_000_040_000 + 40_000; // a minute boundary (28333334 × 60 s), plus 40 s
    expect(await limiter.hit(2, 60_000, t0)).toEqual({ allowed: true, limit: 2, remaining: 1, resetSeconds: 20 });
    expect(await limiter.hit(2, 60_000, t0 + 1)).toMatchObject({ allowed: true, remaining: 0 });
    expect(await limiter.hit(2, 60_000, t0 + 500)).toEqual({ allowed: false, limit: 2, remaining: 0, resetSeconds: 20 });
    expect(await limiter.hit(2, 60_000, t0 + 19_999)).toMatchObject({ allowed: false, resetSeconds: 1 });
    expect(await limiter.hit(2, 60_000, t0 + 20_000)).toMatchObject({ allowed: true, remaining: 1, resetSeconds: 60 });
  });
});

describe("ConcurrencyLimiter (Durable Object)", () => {
  it("holds leases in units up to the limit, frees them on release, and expires lost ones", async () => {
    const limiter = env.SEARCH_CONCURRENCY.get(env.SEARCH_CONCURRENCY.idFromName(`unit-${crypto.randomUUID()}`));
    const t0 = 1_700_000_000_000;
    const a = await limiter.acquire(2, 3, 1_000, t0);
    expect(a).toMatchObject({ allowed: true, inUse: 2, limit: 3 });
    expect(await limiter.acquire(2, 3, 1_000, t0)).toEqual({ allowed: false, inUse: 2, limit: 3 });
    const b = await limiter.acquire(1, 3, 1_000, t0);
    expect(b).toMatchObject({ allowed: true, inUse: 3 });
    await limiter.release(a.leaseId!);
    expect(await limiter.acquire(2, 3, 1_000, t0 + 1)).toMatchObject({ allowed: true, inUse: 3 });
    // Nobody released these: past their lease they no longer count.
    expect(await limiter.acquire(3, 3, 1_000, t0 + 1_001)).toMatchObject({ allowed: true, inUse: 3 });
  });
});

describe("per-key rate limit", () => {
  it("429s with Retry-After past RATE_LIMIT_PER_MINUTE, per key", async () => {
    const app = createApp();
    const limited = { ...env, RATE_LIMIT_PER_MINUTE: "3" };
    const a = await tenantWithKey(["search"]);
    const b = await tenantWithKey(["search"]);
    const get = (key: string) => app.fetch(new Request(`${BASE}/v1/indexes`, { headers: { authorization: `Bearer ${key}` } }), limited, createExecutionContext());

    for (let i = 0; i < 3; i++) {
      const ok = await get(a.key);
      expect(ok.status).toBe(200);
      expect(ok.headers.get("ratelimit-remaining")).toBe(String(2 - i));
    }
    const refused = await get(a.key);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const error = await errorOf(refused);
    expect(error.code).toBe("rate_limited");
    expect(error.message).toContain("3 requests per minute");

    // Another key has its own window.
    expect((await get(b.key)).status).toBe(200);
  });

  it("reads RATE_LIMIT_PER_MINUTE strictly", () => {
    expect(rateLimitPerMinute(undefined)).toBe(DEFAULT_RATE_LIMIT_PER_MINUTE);
    expect(rateLimitPerMinute("120")).toBe(120);
    expect(rateLimitPerMinute("0")).toBe(0);
    expect(() => rateLimitPerMinute("lots")).toThrow(/RATE_LIMIT_PER_MINUTE must be a non-negative integer/);
    expect(() => rateLimitPerMinute("-1")).toThrow(/RATE_LIMIT_PER_MINUTE/);
  });
});
