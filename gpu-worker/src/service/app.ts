/**
 * The worker's HTTP app. Routes are thin: parse and authorise, then delegate to search.ts,
 * rerank.ts or the index backend. The pipeline per request is auth → admission (bounded queue) →
 * batched query encoding → index search → JSON or a frame stream.
 */
import { type Context, Hono } from "hono";
import { routePath } from "hono/route";
import {
  buildRequestSchema,
  type Frame,
  MSGPACK_FRAMES_CONTENT_TYPE,
  qnetRequestSchema,
  rerankRequestSchema,
  searchRequestSchema,
} from "../../../shared/api/worker-api.ts";
import { DEFAULT_WINDOW_SECONDS } from "../../../shared/api/signing.ts";
import { encodeQNet } from "../../../shared/qnet/wire.ts";
import type { HypencoderRuntime } from "../model/runtime/runtime.ts";
import { Admission } from "./admission.ts";
import { refuseReplays, signatureAuth } from "./auth.ts";
import type { WorkerConfig } from "./config.ts";
import type { ServiceEnv } from "./context.ts";
import { ApiError, toApiError } from "./errors.ts";
import { type EmitFrame, streamFrames } from "./frame-stream.ts";
import { mountLifecycleRoutes } from "./lifecycle-routes.ts";
import type { IndexBackend } from "../index/index-backend.ts";
import type { Logger } from "./logger.ts";
import { ServiceMetrics } from "./metrics.ts";
import { QueryBatcher } from "./query-batcher.ts";
import { ReplayCache } from "./replay-cache.ts";
import { runRerank } from "./rerank.ts";
import { parseRequest } from "./request-body.ts";
import { type RequestScope, runAdmitted } from "./request-scope.ts";
import { runSearch } from "./search.ts";
import { registerLivingRoutes } from "./living-routes.ts";

export type ServiceRuntime = Pick<HypencoderRuntime, "prepareQueries" | "embedDocuments" | "devices">;

export type ServiceSettings = Pick<
  WorkerConfig,
  | "signingSecrets"
  | "insecureDev"
  | "queueMax"
  | "concurrency"
  | "batchMax"
  | "batchWaitMs"
  | "requestTimeoutMs"
  | "maxBodyBytes"
  | "maxPendingBodyBytes"
  | "maxAnswerBytes"
>;

/** Signatures remembered for the replay check of builds: far more than a worker can accept in one window. */
const REPLAY_CACHE_ENTRIES = 10_000;

export interface ServiceDeps {
  runtime: ServiceRuntime;
  backend: IndexBackend;
  logger: Logger;
  settings: ServiceSettings;
  metrics?: ServiceMetrics;
}

export interface Service {
  app: Hono<ServiceEnv>;
  metrics: ServiceMetrics;
  admission: Admission;
  batcher: QueryBatcher;
  /** Refuse new work (503) and report unhealthy, for a graceful shutdown. */
  drain(): void;
}

type AnyFrame = Frame;

/**
 * The device we report: the query encoder's (it does most per-request work), else any loaded graph's.
 * Sessions load lazily, so before the first use (server.ts warms them up) it is "loading".
 */
function deviceOf(runtime: ServiceRuntime): string {
  return runtime.devices.get("queryEncoder") ?? runtime.devices.values().next().value ?? "loading";
}

/** Route pattern for metrics and logs; never the raw path, which holds job ids. */
function routeLabel(c: Context): string {
  const pattern = routePath(c, -1);
  return pattern.endsWith("*") ? "unmatched" : pattern;
}

function wantsFrames(c: Context): boolean {
  return (c.req.header("accept") ?? "").toLowerCase().includes(MSGPACK_FRAMES_CONTENT_TYPE);
}

export function createService(deps: ServiceDeps): Service {
  const { runtime, backend, logger, settings } = deps;
  const metrics = deps.metrics ?? new ServiceMetrics();
  const admission = new Admission({ limit: settings.queueMax, concurrency: settings.concurrency, bodyBytesLimit: settings.maxPendingBodyBytes });
  const replays = new ReplayCache({ maxEntries: REPLAY_CACHE_ENTRIES, windowSeconds: DEFAULT_WINDOW_SECONDS });
  const batcher = new QueryBatcher(runtime, {
    batchMax: settings.batchMax,
    waitMs: settings.batchWaitMs,
    onBatch: (size, ms) => {
      metrics.encoderCalls.inc();
      metrics.batchSize.observe(size);
      metrics.encodeSeconds.observe(ms / 1000);
    },
  });
  metrics.gauge("hyp_worker_queue_running", "Admitted requests doing work", () => admission.stats.running);
  metrics.gauge("hyp_worker_queue_waiting", "Admitted requests waiting for a slot", () => admission.stats.waiting);
  metrics.gauge("hyp_worker_queue_limit", "Running plus waiting requests allowed", () => admission.stats.limit);
  metrics.gauge("hyp_worker_body_bytes_pending", "Bytes of request bodies being read and not yet verified", () => admission.pendingBodyBytes);
  metrics.gauge("hyp_worker_encode_pending", "Queries waiting for the query encoder", () => batcher.pending);

  let draining = false;
  const app = new Hono<ServiceEnv>();

  // Access log and request metrics. Logged: ids, sizes, statuses, timings; never texts.
  app.use(async (c, next) => {
    const started = performance.now();
    const requestId = c.req.header("x-request-id")?.slice(0, 128) ?? crypto.randomUUID();
    c.set("requestId", requestId);
    await next();
    c.header("x-request-id", requestId);
    const labels = { route: routeLabel(c), method: c.req.method, status: String(c.res.status) };
    const seconds = (performance.now() - started) / 1000;
    metrics.requests.inc(labels);
    metrics.requestSeconds.observe(labels, seconds);
    if (labels.route !== "/metrics" && labels.route !== "/healthz") {
      logger.info({ requestId, ...labels, ms: Math.round(seconds * 1000), tenant: c.get("tenant"), bodyBytes: c.get("body")?.length }, "request");
    }
  });

  app.get("/healthz", (c) =>
    c.json({ ok: !draining, device: deviceOf(runtime), queue: admission.stats }, draining ? 503 : 200),
  );
  app.get("/metrics", async (c) => c.body(await metrics.text(), 200, { "content-type": metrics.contentType }));

  app.use("/v1/*", async (c, next) => {
    if (draining) throw new ApiError(503, "shutting_down", "the worker is shutting down", { "retry-after": "1", connection: "close" });
    await next();
  });
  app.use("/v1/*", signatureAuth({ secrets: settings.signingSecrets, insecureDev: settings.insecureDev, maxBodyBytes: settings.maxBodyBytes, admission }));

  const scopeFor = (c: Context<ServiceEnv>, cancelSignal?: AbortSignal) => ({
    admission,
    timeoutMs: settings.requestTimeoutMs,
    clientSignal: c.req.raw.signal,
    cancelSignal,
  });

  /** JSON (the final frame without `type`) or a frame stream, as the client's Accept asks. */
  const respond = async (c: Context<ServiceEnv>, work: (scope: RequestScope, emit?: EmitFrame) => Promise<AnyFrame>) => {
    if (!wantsFrames(c)) {
      const { type: _type, ...body } = await runAdmitted(scopeFor(c), (scope) => work(scope));
      return c.json(body);
    }
    const cancel = new AbortController();
    return streamFrames((emit) => runAdmitted(scopeFor(c, cancel.signal), (scope) => work(scope, emit)), {
      errorFrame: (error) => {
        const { error: apiError, logDetail } = toApiError(error, c.get("requestId"));
        if (logDetail) logger.error({ requestId: c.get("requestId"), err: error }, "request failed after streaming started");
        return { type: "error", code: apiError.code, message: apiError.message };
      },
      onCancel: () => cancel.abort(new DOMException("the client stopped reading the response", "AbortError")),
    });
  };

  app.post("/v1/search", (c) => {
    const request = parseRequest(searchRequestSchema, c.req.header("content-type"), c.get("body"), c.get("tenant"));
    return respond(c, (scope, emit) => runSearch({ batcher, backend, metrics, maxAnswerBytes: settings.maxAnswerBytes }, request, scope, emit));
  });

  app.post("/v1/rerank", (c) => {
    const request = parseRequest(rerankRequestSchema, c.req.header("content-type"), c.get("body"), c.get("tenant"));
    return respond(c, (scope, emit) => runRerank({ batcher, runtime, backend }, request, scope, emit));
  });

  app.post("/v1/qnet", async (c) => {
    const request = parseRequest(qnetRequestSchema, c.req.header("content-type"), c.get("body"), c.get("tenant"));
    const qnet = await runAdmitted(scopeFor(c), async (scope) => {
      const prepared = await batcher.encode(request.query, request.queryMaxLength, scope.signal);
      try {
        return await prepared.qnet(); // the one route that needs the weights themselves
      } finally {
        await prepared.release();
      }
    });
    return c.body(encodeQNet(qnet, { dtype: request.dtype }) as Uint8Array<ArrayBuffer>, 200, { "content-type": MSGPACK_FRAMES_CONTENT_TYPE });
  });

  // The one route that writes: a captured build request cannot be sent again within its window.
  app.post("/v1/builds", refuseReplays(replays), (c) => {
    const request = parseRequest(buildRequestSchema, c.req.header("content-type"), c.get("body"), c.get("tenant"));
    return c.json(backend.startBuild(request), 202);
  });

  app.get("/v1/builds/:jobId", (c) => {
    // Scoped by the signed tenant: another tenant's job id is indistinguishable from an unknown one.
    const status = backend.getBuild(c.get("tenant"), c.req.param("jobId"));
    if (!status) throw new ApiError(404, "build_not_found", "no such build job for this tenant");
    return c.json(status);
  });

  app.post("/v1/builds/:jobId/cancel", (c) => {
    const status = backend.cancelBuild(c.get("tenant"), c.req.param("jobId"));
    if (!status) throw new ApiError(404, "build_not_found", "no such build job for this tenant");
    return c.json(status);
  });

  registerLivingRoutes(app, { backend, scopeFor: (c) => scopeFor(c) });
  mountLifecycleRoutes(app, { backend, replays, metrics }); // POST /v1/compactions, /v1/sweep; memory gauges

  app.notFound((c) => c.json(new ApiError(404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`).body(), 404));

  app.onError((err, c) => {
    const { error, logDetail } = toApiError(err, c.get("requestId"));
    if (logDetail) logger.error({ requestId: c.get("requestId"), err }, "request failed");
    return c.json(error.body(), error.status as 500, error.headers);
  });

  return {
    app,
    metrics,
    admission,
    batcher,
    drain: () => {
      draining = true;
    },
  };
}
