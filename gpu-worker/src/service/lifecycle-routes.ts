/**
 * The worker's lifecycle routes (living indexes) and its memory gauges, mounted by app.ts after
 * auth (so every request here is signed, and its body's tenant checked against the signature):
 *
 * - POST /v1/compactions (living-api.ts compactionRequestSchema) → 202 BuildStatus, like
 *   POST /v1/builds: a job of the build manager, polled with GET /v1/builds/:jobId and cancelled
 *   with POST /v1/builds/:jobId/cancel.
 * - POST /v1/sweep (sweepRequestSchema) → 200 SweepAnswer, once the objects are deleted.
 *   Idempotent: the edge repeats it (an index's destroy sweeps twice).
 * - Gauges `hypencoder_loaded_versions` and `hypencoder_loaded_bytes` on /metrics.
 *
 * Both routes change the store, so a captured signed request cannot be sent again (refuseReplays).
 */
import type { Hono } from "hono";
import { compactionRequestSchema, sweepRequestSchema } from "../../../shared/api/living-api.ts";
import { BuildsUnavailableError } from "../index/build/errors.ts";
import type { IndexBackend } from "../index/index-backend.ts";
import { refuseReplays } from "./auth.ts";
import type { ServiceEnv } from "./context.ts";
import type { ServiceMetrics } from "./metrics.ts";
import type { ReplayCache } from "./replay-cache.ts";
import { parseRequest } from "./request-body.ts";

export interface LifecycleRouteDeps {
  backend: IndexBackend;
  replays: ReplayCache;
  metrics: ServiceMetrics;
}

export function mountLifecycleRoutes(app: Hono<ServiceEnv>, { backend, replays, metrics }: LifecycleRouteDeps): void {
  if (backend.memory) metrics.loadedIndexMemory(() => backend.memory!());

  app.post("/v1/compactions", refuseReplays(replays), (c) => {
    const request = parseRequest(compactionRequestSchema, c.req.header("content-type"), c.get("body"), c.get("tenant"));
    if (!backend.startCompaction) throw new BuildsUnavailableError();
    return c.json(backend.startCompaction(request), 202);
  });

  app.post("/v1/sweep", refuseReplays(replays), async (c) => {
    const request = parseRequest(sweepRequestSchema, c.req.header("content-type"), c.get("body"), c.get("tenant"));
    if (!backend.sweep) throw new BuildsUnavailableError();
    return c.json(await backend.sweep(request));
  });
}
