/**
 * GET|POST /v1/indexes/:id/search (mounted under /v1/indexes): validate → resolve the active version
 * and head seq (D1) → result cache → the tenant's concurrency cap → fan out to the GPU workers →
 * render. Requires an API key with the "search" scope.
 *
 * Consistency "strong" (the default) searches the version's segments plus the WAL tail
 * (coveredSeq, headSeq] as the pseudo-shard TAIL_SHARD_ID, so every acknowledged write is seen;
 * "eventual" searches the segments alone. Answers say what they saw: x-index-version, x-index-head-seq.
 *
 * Some shards unanswered: 200 with `partial: true` and `missingShards`. No shard answered at all: a
 * 503 `workers_unavailable` with Retry-After (a final `error` frame in a stream), never an empty 200.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { z } from "zod";
import { TAIL_SHARD_ID } from "../../../shared/api/living-api.ts";
import type { Frame } from "../../../shared/api/worker-api.ts";
import { indexId } from "../../../shared/api/worker-api.ts";
import { canonicalFilter, parseFilter } from "../../../shared/filter/filter.ts";
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
import { activeVersionOrThrow, d1SearchCatalog, type SearchCatalog, tailToRead } from "./catalog.ts";
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
    const active = await activeVersionOrThrow(catalog, c.env.DB, tenant, index, { tailOnly: true });
    const { query, fields, stream: _stream, consistency, filter: filterInput, ...params } = request;
    // Validated against the index's own field schema (a FilterError is a 400 naming path and field).
    const filter = filterInput === undefined ? undefined : parseFilter(filterInput, active.fields ?? {});
    const tail = tailToRead(active, consistency);
    const shards = tail ? [...active.shards, TAIL_SHARD_ID] : active.shards;
    const seen: Seen = { version: active.version, headSeq: tail?.toSeq ?? active.coveredSeq };
    // Nothing to search (a compaction left no segments, and no write came after it): no worker to ask.
    if (shards.length === 0) return emptyAnswer(format, seen);
    const pool = workerPoolFromEnv(c.env);
    const fanout: FanoutInput = {
      request: {
        tenant,
        index,
        version: active.version,
        ...(tail ? { tail } : {}),
        query,
        params,
        fields,
        // Every worker filters its own shards (and the tail), each against the same schema.
        ...(filter ? { filter, filterFields: active.fields ?? {} } : {}),
        includeQNet: false,
      },
      shards,
      workers: pool.workers,
      fetcher,
      secret: pool.secret,
      timeoutMs: pool.timeoutMs,
      signal: c.req.raw.signal,
    };
    if (request.stream) return streamed(format, fanout, seen, await acquireSearchSlots(c.env, tenant, params));

    const ttl = Number(c.env.RESULT_CACHE_TTL_SECONDS ?? DEFAULT_RESULT_CACHE_TTL_SECONDS);
    const wholeFormat = format === "msgpack" ? "msgpack" : "json";
    const cache = Number.isFinite(ttl) && ttl > 0 ? cacheFor(ttl) : undefined;
    const key =
      cache &&
      (await resultCacheKey({
        tenant,
        index,
        version: active.version,
        query,
        params,
        fields,
        format: wholeFormat,
        consistency,
        headSeq: tail?.toSeq ?? null,
        filter: filter ? canonicalFilter(filter) : null,
      }));
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
      headers: { "content-type": CONTENT_TYPES[wholeFormat], ...seenHeaders(seen), "cache-control": "private, no-store" },
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
function streamed(format: ReturnType<typeof responseFormat>, input: FanoutInput, seen: Seen, release: () => Promise<void>): Response {
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
          (result) => send(publicResult(result, seen.version)),
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
      ...seenHeaders(seen),
      "x-cache": "MISS",
      // Tells reverse proxies not to buffer the stream.
      "x-accel-buffering": "no",
    },
  });
}

/** What an answer reflects: the version searched, and the highest write seq it saw. */
interface Seen {
  version: number;
  headSeq: number;
}

function seenHeaders(seen: Seen): Record<string, string> {
  return { "x-index-version": String(seen.version), "x-index-head-seq": String(seen.headSeq) };
}

/** The answer of a search with nothing to search: no hits, complete. */
function emptyAnswer(format: ReturnType<typeof responseFormat>, seen: Seen): Response {
  const result = publicResult(
    { type: "result", hits: [], stats: { docsScored: 0, iterations: 0, shardsSearched: 0, ms: { queue: 0, encode: 0, search: 0, total: 0 } }, partial: false, missingShards: [] },
    seen.version,
  );
  const body = format === "json" || format === "msgpack" ? encodeWhole(format, result) : encodeStreamFrame(format, result);
  return new Response(body, { headers: { "content-type": CONTENT_TYPES[format], ...seenHeaders(seen), "cache-control": "private, no-store", "x-cache": "MISS" } });
}

function withHeaders(response: Response, headers: Record<string, string>): Response {
  const copy = new Response(response.body, response);
  for (const [name, value] of Object.entries(headers)) copy.headers.set(name, value);
  return copy;
}


export const searchRoutes = createSearchRoutes();
