/**
 * GET /readyz: readiness, unlike /healthz (liveness, which touches nothing): can this edge reach
 * its GPU workers? Each worker's own /healthz is probed in parallel with a short timeout, so the
 * check is bounded (READINESS_PROBE_TIMEOUT_MS whatever the workers do), and the outcome is cached
 * per isolate for READINESS_CACHE_MS, so a load balancer polling every second costs the workers
 * one probe per isolate per few seconds. 200 while at least one worker answers, else 503 with
 * Retry-After. Only counts are reported: the worker URLs are not public.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { EdgeEnv } from "./env.ts";
import type { RouteDoc } from "./openapi/route-doc.ts";
import { attemptSignal, defaultFetcher, type Fetcher } from "./routing/worker-client.ts";
import { parseWorkerPool } from "./routing/worker-pool.ts";

export const READINESS_PROBE_TIMEOUT_MS = 2_000;
export const READINESS_CACHE_MS = 5_000;

const readinessResponse = z.object({
  ok: z.boolean(),
  service: z.string(),
  workers: z.object({ total: z.number().int(), reachable: z.number().int() }),
});
type Readiness = z.infer<typeof readinessResponse>;

export interface ReadinessDeps {
  fetcher?: Fetcher;
  /** How long an outcome is reused (default READINESS_CACHE_MS). */
  cacheMs?: number;
}

/** A worker is reachable when its /healthz answers 2xx in time (a draining worker answers 503). */
async function probe(fetcher: Fetcher, worker: string): Promise<boolean> {
  const attempt = attemptSignal(undefined, READINESS_PROBE_TIMEOUT_MS);
  try {
    const response = await fetcher(`${worker}/healthz`, { signal: attempt.signal });
    await response.body?.cancel().catch(() => {});
    return response.ok;
  } catch {
    return false;
  } finally {
    attempt.done();
  }
}

export function createReadinessRoutes(deps: ReadinessDeps = {}): Hono<EdgeEnv> {
  const fetcher = deps.fetcher ?? defaultFetcher;
  const cacheMs = deps.cacheMs ?? READINESS_CACHE_MS;
  /** Per pool configuration: the outcome and when it was measured (in-flight probes are shared too). */
  const cache = new Map<string, { at: number; workers: Promise<Readiness["workers"]> }>();
  const router = new Hono<EdgeEnv>();

  router.get("/readyz", async (c) => {
    const poolKey = c.env.GPU_WORKERS ?? "";
    let entry = cache.get(poolKey);
    if (!entry || Date.now() - entry.at > cacheMs) {
      let workers: string[] = [];
      try {
        workers = parseWorkerPool(poolKey);
      } catch {
        // A misconfigured pool has no reachable worker.
      }
      entry = {
        at: Date.now(),
        workers: Promise.all(workers.map((w) => probe(fetcher, w))).then((up) => ({ total: workers.length, reachable: up.filter(Boolean).length })),
      };
      cache.set(poolKey, entry);
    }
    const workers = await entry.workers;
    const ok = workers.reachable > 0;
    return c.json<Readiness>({ ok, service: c.env.SERVICE_NAME, workers }, ok ? 200 : 503, ok ? { "cache-control": "no-store" } : { "cache-control": "no-store", "retry-after": "5" });
  });
  return router;
}

export const readinessRoutes = createReadinessRoutes();

export const readinessRouteDocs: RouteDoc[] = [
  {
    method: "get",
    path: "/readyz",
    summary: "Readiness check: are GPU workers reachable?",
    description: `Probes every GPU worker's /healthz (${READINESS_PROBE_TIMEOUT_MS} ms timeout each, in parallel); the outcome is cached for ${READINESS_CACHE_MS / 1000} s. /healthz, by contrast, says only that the edge is up.`,
    tags: ["meta"],
    auth: "none",
    responses: {
      200: { description: "At least one GPU worker answers", schema: readinessResponse },
      503: { description: "No GPU worker answers (or none is configured); see Retry-After", schema: readinessResponse },
    },
  },
];
