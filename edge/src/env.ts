/**
 * Every binding of the Worker (wrangler.toml: [vars], secrets, D1, Durable Objects) and the
 * per-request context variables, in this one file, so every router (`new Hono<EdgeEnv>()`) sees
 * the same types. Modules that read only a few bindings take `Pick<EdgeBindings, …>`.
 */
import type { AuthContext } from "./auth/api-key.ts";
import type { IndexWriter } from "./living/index-writer.ts";
import type { ConcurrencyLimiter } from "./rate-limit/concurrency-limiter.ts";
import type { RateLimiter } from "./rate-limit/rate-limiter.ts";

export interface EdgeBindings {
  SERVICE_NAME: string;
  /** D1: tenants, API keys, indexes, versions, uploads, builds (edge/migrations). */
  DB: D1Database;
  /** Operator secret for /v1/admin (a Wrangler secret; a plain binding in tests). Admin API is off when unset. */
  ADMIN_TOKEN?: string;

  /** Requests per minute per API key; a decimal string from [vars]. */
  RATE_LIMIT_PER_MINUTE?: string;
  /** One fixed-window counter per API key (edge/src/rate-limit/rate-limiter.ts). */
  RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
  /** Search cost units in flight per tenant (default 16; "0" switches the cap off; rate-limit/search-slots.ts). */
  SEARCH_CONCURRENCY_PER_TENANT?: string;
  /** One lease table of searches in flight per tenant (rate-limit/concurrency-limiter.ts). */
  SEARCH_CONCURRENCY: DurableObjectNamespace<ConcurrencyLimiter>;
  /** One writer per index, named `${tenant}/${index}` (living/index-writer.ts): write seqs, commits, maintenance alarms. */
  INDEX_WRITER: DurableObjectNamespace<IndexWriter>;

  // The GPU worker pool (routing/worker-pool.ts).
  /** Comma-separated base URLs of the GPU workers. */
  GPU_WORKERS?: string;
  /** Shared HMAC secret for edge → worker requests (a Wrangler secret). */
  WORKER_SIGNING_SECRET?: string;
  /** Per-attempt timeout for a worker call, in ms (a decimal string from [vars]). */
  WORKER_TIMEOUT_MS?: string;

  // Object storage (uploads/s3-client.ts): the edge's S3 identity presigns uploads and reads manifests.
  S3_ENDPOINT?: string;
  S3_REGION?: string;
  S3_ACCESS_KEY_ID?: string;
  S3_SECRET_ACCESS_KEY?: string;
  S3_BUCKET?: string;
  /** Lifetime of presigned upload URLs in seconds (60-3600, default 900). */
  UPLOAD_URL_TTL_SECONDS?: string;

  /** Seconds a complete search answer stays in the result cache; "0" turns the cache off. */
  RESULT_CACHE_TTL_SECONDS?: string;
  /** Seconds a running build's worker may stay unreachable before the build fails (default 900). */
  BUILD_SILENCE_SECONDS?: string;
  /** Builds in progress one tenant may hold across the fleet (default 2; builds/routes.ts). */
  MAX_BUILDS_PER_TENANT?: string;

  // Living indexes (living/maintenance.ts; docs/DEPLOYMENT.md): when the tail is compacted, and GC.
  /** Tail documents that trigger a compaction (default 10000). */
  COMPACT_TAIL_DOCS?: string;
  /** Tail batches that trigger a compaction (default 1000). */
  COMPACT_TAIL_BATCHES?: string;
  /** Age in seconds of the oldest uncompacted batch that triggers a compaction (default 300). */
  COMPACT_TAIL_AGE_SECONDS?: string;
  /** Seconds a superseded version (and covered WAL) is kept before it is swept (default 3600). */
  GC_GRACE_SECONDS?: string;
  /** Seconds between GC sweeps of one index (default 600). */
  GC_INTERVAL_SECONDS?: string;
}

/** The GPU worker pool's bindings. */
export type WorkerBindings = Pick<EdgeBindings, "GPU_WORKERS" | "WORKER_SIGNING_SECRET" | "WORKER_TIMEOUT_MS">;
/** Object storage's bindings. */
export type S3Bindings = Pick<EdgeBindings, "S3_ENDPOINT" | "S3_REGION" | "S3_ACCESS_KEY_ID" | "S3_SECRET_ACCESS_KEY" | "S3_BUCKET">;

export interface EdgeVariables {
  /** Set by requireApiKey: who is calling, for which tenant, with which scopes. */
  auth: AuthContext;
}

export interface EdgeEnv {
  Bindings: EdgeBindings;
  Variables: EdgeVariables;
}
