import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE } from "../test/support.ts";
import { testApp } from "../test/route-harness.ts";
import { createReadinessRoutes, READINESS_PROBE_TIMEOUT_MS } from "./readiness.ts";

const POOL = "http://w0.test,http://w1.test,http://w2.test";

/** Workers by origin: "up" answers 200, "draining" 503, "frozen" never answers, anything else refuses the connection. */
function workers(states: Record<string, "up" | "draining" | "frozen" | "down">) {
  const probes: string[] = [];
  const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input));
    probes.push(url.origin + url.pathname);
    const state = states[url.origin] ?? "down";
    if (state === "up") return Response.json({ ok: true });
    if (state === "draining") return Response.json({ ok: false }, { status: 503 });
    if (state === "frozen") {
      return new Promise<Response>((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason), { once: true }));
    }
    throw new TypeError("connect ECONNREFUSED");
  }) as typeof fetch;
  return { fetcher, probes };
}

const get = (app: ReturnType<typeof testApp>, pool = POOL) => app.request("/readyz", {}, { ...env, GPU_WORKERS: pool });

describe("GET /readyz", () => {
  it("is 200 with counts while some worker answers, and 503 with Retry-After when none does", async () => {
    const pool = workers({ "http://w0.test": "up", "http://w1.test": "draining" });
    const app = testApp(createReadinessRoutes({ fetcher: pool.fetcher, cacheMs: 0 }), "/");
    const ready = await get(app);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ok: true, workers: { total: 3, reachable: 1 } });
    expect(pool.probes.sort()).toEqual(["http://w0.test/healthz", "http://w1.test/healthz", "http://w2.test/healthz"]);

    const none = testApp(createReadinessRoutes({ fetcher: workers({ "http://w1.test": "draining" }).fetcher, cacheMs: 0 }), "/");
    const down = await get(none);
    expect(down.status).toBe(503);
    expect(down.headers.get("retry-after")).toBe("5");
    expect(await down.json()).toMatchObject({ ok: false, workers: { total: 3, reachable: 0 } });
  });

  it("is bounded by the probe timeout when a worker is frozen", async () => {
    const app = testApp(createReadinessRoutes({ fetcher: workers({ "http://w0.test": "frozen", "http://w1.test": "up" }).fetcher, cacheMs: 0 }), "/");
    const started = Date.now();
    const response = await get(app);
    expect(Date.now() - started).toBeLessThan(READINESS_PROBE_TIMEOUT_MS + 1_000);
    expect(await response.json()).toMatchObject({ ok: true, workers: { reachable: 1 } });
  });

  it("caches the outcome briefly, so polling does not probe every time", async () => {
    const pool = workers({ "http://w0.test": "up" });
    const app = testApp(createReadinessRoutes({ fetcher: pool.fetcher, cacheMs: 60_000 }), "/");
    await get(app);
    await get(app);
    await get(app);
    expect(pool.probes).toHaveLength(3);
  });

  it("through the real app: no reachable worker is 503, while /healthz stays 200", async () => {
    expect((await SELF.fetch(`${BASE}/readyz`)).status).toBe(503);
    expect((await SELF.fetch(`${BASE}/healthz`)).status).toBe(200);
    expect(await (await get(testApp(createReadinessRoutes({ fetcher: workers({}).fetcher }), "/"), "")).json()).toMatchObject({ ok: false, workers: { total: 0 } });
  });
});
