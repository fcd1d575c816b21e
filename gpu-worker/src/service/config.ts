/**
 * The worker's settings, all from the environment, validated once at start-up: a bad value stops the
 * process with every problem listed, instead of surfacing on the first request.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as z from "zod";
import { ID_PATTERN, WORKER_FRAME_LIMIT_BYTES } from "../../../shared/api/worker-api.ts";
import { type BuildLimits, DEFAULT_BUILD_LIMITS } from "../index/build/limits.ts";
import { DEFAULT_WORKER_MEMORY_BUDGET_BYTES } from "../index/memory-budget.ts";

/** See REQUEST_TIMEOUT_MS. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 20_000;
/** See MAX_BODY_BYTES: the edge's rerank body limit (edge/src/query-model/request.ts) plus 64 KiB. */
export const DEFAULT_MAX_BODY_BYTES = 8 * 2 ** 20 + 64 * 1024;
/** See MAX_ANSWER_BYTES: 4 MiB under the edge's frame limit (WORKER_FRAME_LIMIT_BYTES, 64 MiB). */
export const DEFAULT_MAX_ANSWER_BYTES = WORKER_FRAME_LIMIT_BYTES - 4 * 2 ** 20;

export interface PreloadIndex {
  tenant: string;
  index: string;
  version: number;
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const flag = z.enum(["0", "1", "true", "false"]).transform((v) => v === "1" || v === "true");
const optionalString = z.string().trim().optional().transform((v) => (v === "" ? undefined : v));

const PRELOAD_ENTRY = /^([^/@\s]+)\/([^/@\s]+)@([0-9]+)$/;

const preloadList = z
  .string()
  .default("")
  .transform((value, ctx): PreloadIndex[] =>
    value
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s.length > 0)
      .flatMap((entry) => {
        const m = PRELOAD_ENTRY.exec(entry);
        if (!m || !ID_PATTERN.test(m[1]!) || !ID_PATTERN.test(m[2]!) || Number(m[3]) < 1) {
          ctx.addIssue({ code: "custom", message: `"${entry}" is not tenant/index@version` });
          return [];
        }
        return [{ tenant: m[1]!, index: m[2]!, version: Number(m[3]) }];
      }),
  );

const envSchema = z.object({
  PORT: int(0, 65_535).default(8081),
  HOST: z.string().min(1).default("127.0.0.1"),
  MODEL_DIR: z.string().min(1, "MODEL_DIR must name an imported model directory"),
  DEVICE: z.enum(["auto", "cpu", "cuda"]).default("auto"),
  /** Score concurrent searches' rows in one batched call (model/runtime/score-batcher.ts): "auto" (on CUDA only), or a flag. */
  SCORE_BATCHING: z.union([z.literal("auto"), flag]).default("auto"),
  HYP_SIGNING_SECRETS: z
    .string()
    .default("")
    .transform((v) => v.split(",").map((s) => s.trim()).filter((s) => s.length > 0)),
  HYP_INSECURE_DEV: flag.default(false),
  /** Requests admitted at once (running or waiting); beyond it the worker answers 503. */
  QUEUE_MAX: int(1, 100_000).default(64),
  /** Requests running model or index work at once; the rest of QUEUE_MAX wait in line. Default min(32, QUEUE_MAX). */
  CONCURRENCY: int(1, 10_000).optional(),
  BATCH_MAX: int(1, 1024).default(16),
  BATCH_WAIT_MS: z.coerce.number().min(0).max(1000).default(2),
  /** A search, rerank or q-net request's limit; shorter than the edge's per-attempt limit (edge/src/routing/worker-pool.ts, 25 s), so the worker gives up first and its 504 is not re-run elsewhere. */
  REQUEST_TIMEOUT_MS: int(1, 3_600_000).default(DEFAULT_REQUEST_TIMEOUT_MS),
  SHUTDOWN_GRACE_MS: int(0, 3_600_000).default(25_000),
  /** Requests with a larger body get 413. What the edge sends at most: an 8 MiB rerank body plus the tenant and version it adds. */
  MAX_BODY_BYTES: int(1024, 2 ** 31).default(DEFAULT_MAX_BODY_BYTES),
  /** Bytes of request bodies being read at once, not yet checked against their signed hash; beyond it, 503. */
  MAX_PENDING_BODY_BYTES: int(1024, 2 ** 40).default(128 * 2 ** 20),
  /** The largest answer (JSON body or result frame); a bigger one is a 400 answer_too_large. Below the edge's 64 MiB frame limit. */
  MAX_ANSWER_BYTES: int(1024, 2 ** 31).default(DEFAULT_MAX_ANSWER_BYTES),
  /** A build's decompressed input bytes, over all its inputs (blank lines included); beyond it, input_too_large. */
  BUILD_MAX_INPUT_BYTES: int(1, Number.MAX_SAFE_INTEGER).default(DEFAULT_BUILD_LIMITS.maxInputBytes),
  /** Decompressed bytes per compressed byte of a gzip input, checked as it streams; beyond it, input_too_large. */
  BUILD_MAX_GZIP_RATIO: int(1, 1_000_000).default(DEFAULT_BUILD_LIMITS.maxGzipRatio),
  /** A build's wall time, both passes; beyond it, build_timeout. */
  BUILD_TIMEOUT_MS: int(1000, 30 * 24 * 3_600_000).default(DEFAULT_BUILD_LIMITS.timeoutMs),
  /** Bytes of document text a build holds at once (read ahead, waiting to be encoded). */
  BUILD_TEXT_BYTES_IN_FLIGHT: int(1024, 2 ** 40).default(DEFAULT_BUILD_LIMITS.textBytesInFlight),
  /** Bytes of loaded index data (shards and deletion masks of loaded versions, WAL tails) held in memory; above it idle ones are evicted, least recently used first. */
  WORKER_MEMORY_BUDGET_BYTES: int(1, Number.MAX_SAFE_INTEGER).default(DEFAULT_WORKER_MEMORY_BUDGET_BYTES),
  SHARD_CACHE_DIR: z.string().min(1).default(join(tmpdir(), "hypencoder-shard-cache")),
  SHARD_CACHE_BYTES: int(1, Number.MAX_SAFE_INTEGER).default(20 * 2 ** 30),
  /** Where index versions live: s3://bucket/prefix, or a local directory. */
  INDEX_STORE: optionalString,
  S3_ENDPOINT: optionalString.pipe(z.url({ message: "S3_ENDPOINT must be a URL" }).optional()),
  S3_REGION: z.string().min(1).default("us-east-1"),
  S3_FORCE_PATH_STYLE: flag.default(false),
  PRELOAD_INDEXES: preloadList,
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export interface WorkerConfig {
  port: number;
  host: string;
  modelDir: string;
  device: "auto" | "cpu" | "cuda";
  scoreBatching: boolean | "auto";
  /** Never log these; `describeConfig` gives a loggable view. */
  signingSecrets: string[];
  insecureDev: boolean;
  queueMax: number;
  concurrency: number;
  batchMax: number;
  batchWaitMs: number;
  requestTimeoutMs: number;
  shutdownGraceMs: number;
  maxBodyBytes: number;
  maxPendingBodyBytes: number;
  maxAnswerBytes: number;
  buildLimits: BuildLimits;
  /** WORKER_MEMORY_BUDGET_BYTES */
  workerMemoryBudgetBytes: number;
  shardCacheDir: string;
  shardCacheBytes: number;
  indexStore?: string;
  s3: { endpoint?: string; region: string; forcePathStyle: boolean };
  preload: PreloadIndex[];
  logLevel: string;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export function loadConfig(env: Record<string, string | undefined> = process.env): WorkerConfig {
  // Empty variables count as unset, as in most shells' `VAR= cmd`.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".") || "env"}: ${i.message}`);
    throw new ConfigError(`invalid worker configuration:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  if (e.HYP_SIGNING_SECRETS.length === 0 && !e.HYP_INSECURE_DEV) {
    throw new ConfigError("HYP_SIGNING_SECRETS is required (comma-separated; the first signs, all verify)");
  }
  if (e.HYP_INSECURE_DEV && e.HYP_SIGNING_SECRETS.length === 0 && !LOOPBACK.has(e.HOST)) {
    // Unsigned requests are only tolerable where nothing but this machine can reach the port.
    throw new ConfigError(`HYP_INSECURE_DEV without signing secrets only listens on loopback, not HOST=${e.HOST}`);
  }
  const concurrency = e.CONCURRENCY ?? Math.min(32, e.QUEUE_MAX);
  if (concurrency > e.QUEUE_MAX) throw new ConfigError(`CONCURRENCY (${concurrency}) must not exceed QUEUE_MAX (${e.QUEUE_MAX})`);
  if (e.MAX_PENDING_BODY_BYTES < e.MAX_BODY_BYTES) {
    throw new ConfigError(`MAX_PENDING_BODY_BYTES (${e.MAX_PENDING_BODY_BYTES}) must be at least MAX_BODY_BYTES (${e.MAX_BODY_BYTES})`);
  }
  return {
    port: e.PORT,
    host: e.HOST,
    modelDir: e.MODEL_DIR,
    device: e.DEVICE,
    scoreBatching: e.SCORE_BATCHING,
    signingSecrets: e.HYP_SIGNING_SECRETS,
    insecureDev: e.HYP_INSECURE_DEV,
    queueMax: e.QUEUE_MAX,
    concurrency,
    batchMax: e.BATCH_MAX,
    batchWaitMs: e.BATCH_WAIT_MS,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    maxBodyBytes: e.MAX_BODY_BYTES,
    maxPendingBodyBytes: e.MAX_PENDING_BODY_BYTES,
    maxAnswerBytes: e.MAX_ANSWER_BYTES,
    buildLimits: {
      maxInputBytes: e.BUILD_MAX_INPUT_BYTES,
      maxGzipRatio: e.BUILD_MAX_GZIP_RATIO,
      timeoutMs: e.BUILD_TIMEOUT_MS,
      textBytesInFlight: e.BUILD_TEXT_BYTES_IN_FLIGHT,
    },
    workerMemoryBudgetBytes: e.WORKER_MEMORY_BUDGET_BYTES,
    shardCacheDir: e.SHARD_CACHE_DIR,
    shardCacheBytes: e.SHARD_CACHE_BYTES,
    indexStore: e.INDEX_STORE,
    s3: { endpoint: e.S3_ENDPOINT, region: e.S3_REGION, forcePathStyle: e.S3_FORCE_PATH_STYLE },
    preload: e.PRELOAD_INDEXES,
    logLevel: e.LOG_LEVEL,
  };
}

/** The configuration as it may be logged: secrets are replaced by their count. */
export function describeConfig(config: WorkerConfig): Record<string, unknown> {
  const { signingSecrets, ...rest } = config;
  return { ...rest, signingSecrets: `${signingSecrets.length} configured` };
}
