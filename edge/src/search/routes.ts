/**
 * GET|POST /v1/indexes/:id/search (mounted under /v1/indexes): validate → resolve the active version
 * (D1) → result cache → the tenant's concurrency cap → fan out to the GPU workers → render. Requires
 * an API key with the "search" scope.
 *
 * Some shards unanswered: 200 with `partial: true` and `missingShards`. No shard answered at all: a
 * 503 `workers_unavailable` with Retry-After (a final `error` frame in a stream), never an empty 200.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { z } from "zod";
import type { Frame } from "../../../shared/api/worker-api.ts";
import { indexId } from "../../../shared/api/worker-api.ts";
import { requireApiKey } from "../auth/require-api-key.ts";
import { DEFAULT_RESULT_CACHE_TTL_SECONDS, type ResultCache, resultCache, resultCacheKey } from "../cache/result-cache.ts";
import type { EdgeEnv } from "../env.ts";
import { ApiError, toApiError } from "../errors.ts";
import { waitUntil } from "../http/wait-until.ts";
import { parseInput } from "../http/validate.ts";
import { type FanoutResult, fanOutSearch, type FanoutInput } from "../routing/fanout.ts";
import { acquireSearchSlots } from "../rate-limit/search-slots.ts";
import { defaultFetcher, type Fetcher } from "../routing/worker-client.ts";
import { workerPoolFromEnv } from "../routing/worker-pool.ts";
import { type ActiveVersion, activeVersionOrThrow, d1SearchCatalog, type SearchCatalog } from "./catalog.ts";
import { CONTENT_TYPES, encodeStreamFrame, encodeWhole, publicResult } from "./render.ts";
import { type PublicSearch, responseFormat, searchFromBody, searchFromQueryString } from "./request.ts";

export interface SearchDeps {
  fetcher?: Fetcher;
  catalog?: SearchCatalog;
  cache?: (ttlSeconds: number) => ResultCache;
  /** Authentication; requireApiKey("search") in production, a stub in unit tests. */
  auth?: MiddlewareHandler<EdgeEnv>;
}

const pathSchema = z.object({ id: indexId });

export function createSearchRoutes(deps: SearchDeps = {}): Hono<EdgeEnv> {
  const fetcher = deps.fetcher ?? defaultFetcher;
  const catalog = deps.catalog ?? d1SearchCatalog;
  const cacheFor = deps.cache ?? ((ttl: number) => resultCache(ttl));
  const router = new Hono<EdgeEnv>();
  router.use("/:id/search", deps.auth ?? requireApiKey("search"));
  router.get("/:id/search", (c) => search(c, searchFromQueryString(new URL(c.req.url))));
  router.post("/:id/search", async (c) => search(c, await searchFromBody(c)));

  async function search(c: Context<EdgeEnv>, request: PublicSearch): Promise<Response> {
    const { id: index } = parseInput(pathSchema, c.req.param(), "path");
    const tenant = c.get("auth").tenantId;
    const format = responseFormat(c.req.header("accept"), request.stream);
    const active = await activeVersionOrThrow(catalog, c.env.DB, tenant, index);
    const pool = workerPoolFromEnv(c.env);
    const { query, fields, stream: _stream, ...params } = request;
    const fanout: FanoutInput = {
      request: { tenant, index, version: active.version, query, params, fields, includeQNet: false },
      shards: active.shards,
      workers: pool.workers,
      fetcher,
      secret: pool.secret,
      timeoutMs: pool.timeoutMs,
      signal: c.req.raw.signal,
    };
    if (request.stream) return streamed(format, fanout, active, await acquireSearchSlots(c.env, tenant, params));

    const ttl = Number(c.env.RESULT_CACHE_TTL_SECONDS ?? DEFAULT_RESULT_CACHE_TTL_SECONDS);
    const wholeFormat = format === "msgpack" ? "msgpack" : "json";
    const cache = Number.isFinite(ttl) && ttl > 0 ? cacheFor(ttl) : undefined;
    const key = cache && (await resultCacheKey({ tenant, index, version: active.version, query, params, fields, format: wholeFormat }));
    if (cache && key) {
      const hit = await cache.match(key);
      if (hit) return withHeaders(hit, { "x-cache": "HIT", "cache-control": "private, no-store" });
    }

    // A failure (a worker refusing the query, the client gone) is mapped by app.onError (errors.ts).
    const release = await acquireSearchSlots(c.env, tenant, params);
    let searched: FanoutResult;
    try {
      searched = answeredByAWorker(await fanOutSearch(fanout), fanout.shards.length);
    } finally {
      waitUntil(c, release());
    }
    const result = publicResult(searched, active.version);
    const response = new Response(encodeWhole(wholeFormat, result), {
      headers: { "content-type": CONTENT_TYPES[wholeFormat], "x-index-version": String(result.version), "cache-control": "private, no-store" },
    });
    // A partial answer is a transient failure: caching it would repeat it after the workers recover.
    if (cache && key && !result.partial) cache.put(key, response.clone(), (p) => waitUntil(c, p));
    return withHeaders(response, { "x-cache": "MISS" });
  }

  return router;
}

/** A fan-out in which no shard was searched has no answer to give: 503, for the client to retry. */
function answeredByAWorker(result: FanoutResult, shardCount: number): FanoutResult {
  if (result.missingShards.length < shardCount) return result;
  throw new ApiError(503, "workers_unavailable", `no GPU worker answered for any of the ${result.missingShards.length} shards; try again shortly`, { "retry-after": "2" });
}

/**
 * Progressive results: the status (200) is committed at once, so later failures arrive as a final
 * `error` frame. Cancelling the response body (client gone) aborts the fan-out and every upstream fetch.
 * Never cached: see cache/result-cache.ts.
 */
function streamed(format: ReturnType<typeof responseFormat>, input: FanoutInput, active: ActiveVersion, release: () => Promise<void>): Response {
  const upstream = new AbortController();
  const onClientAbort = () => upstream.abort(input.signal?.reason);
  input.signal?.addEventListener("abort", onClientAbort, { once: true });
  let closed = false;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const send = (frame: Frame) => {
        if (!closed) controller.enqueue(encodeStreamFrame(format, frame));
      };
      void fanOutSearch({ ...input, signal: upstream.signal, onProgress: send })
        .then((result) => answeredByAWorker(result, input.shards.length))
        .then(
          (result) => send(publicResult(result, active.version)),
          (error: unknown) => {
            // The client is gone (or stopped reading): nobody reads a final frame.
            if (upstream.signal.aborted) return;
            const { code, message } = toApiError(error);
            send({ type: "error", code, message });
          },
        )
        .finally(() => {
          void release();
          input.signal?.removeEventListener("abort", onClientAbort);
          if (closed) return;
          closed = true;
          controller.close();
        });
    },
    cancel(reason) {
      closed = true;
      upstream.abort(reason ?? new DOMException("the client stopped reading", "AbortError"));
    },
  });
  return new Response(body, {
    headers: {
      "content-type": CONTENT_TYPES[format],
      "cache-control": "no-store",
      "x-index-version": String(active.version),
      "x-cache": "MISS",
      // Tells reverse proxies not to buffer the stream.
      "x-accel-buffering": "no",
    },
  });
}

function withHeaders(response: Response, headers: Record<string, string>): Response {
  const copy = new Response(response.body, response);
  for (const [name, value] of Object.entries(headers)) copy.headers.set(name, value);
  return copy;
}


export const searchRoutes = createSearchRoutes();
