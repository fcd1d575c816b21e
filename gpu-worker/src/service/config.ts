/**
 * The worker's settings, all from the environment, validated once at start-up: a bad value stops the
 * process with every problem listed, instead of surfacing on the first request.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as z from "zod";
import { ID_PATTERN } from "../../../shared/api/worker-api.ts";

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
  REQUEST_TIMEOUT_MS: int(1, 3_600_000).default(30_000),
  SHUTDOWN_GRACE_MS: int(0, 3_600_000).default(25_000),
  /** Requests with a larger body get 413. Rerank texts can be large (1000 × 100k chars in the schema). */
  MAX_BODY_BYTES: int(1024, 2 ** 31).default(128 * 2 ** 20),
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
  return {
    port: e.PORT,
    host: e.HOST,
    modelDir: e.MODEL_DIR,
    device: e.DEVICE,
    signingSecrets: e.HYP_SIGNING_SECRETS,
    insecureDev: e.HYP_INSECURE_DEV,
    queueMax: e.QUEUE_MAX,
    concurrency,
    batchMax: e.BATCH_MAX,
    batchWaitMs: e.BATCH_WAIT_MS,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    maxBodyBytes: e.MAX_BODY_BYTES,
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
