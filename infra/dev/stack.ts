/**
 * The local stack's parts — an S3, GPU workers, the edge under `wrangler dev` — started as real
 * processes. `npm run dev` (infra/dev/start.ts) and the end-to-end tests (test/e2e/) both use these,
 * so the tests exercise the stack a developer runs.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { freePort, type ManagedProcess, startProcess, waitForHttp } from "./processes.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const RUN_TS = join(ROOT, "bin/run-ts.mjs");
const WRANGLER = join(ROOT, "node_modules/wrangler/bin/wrangler.js");

export interface S3Settings {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}

export interface WorkerOptions {
  name: string;
  port: number;
  modelDir: string;
  s3: S3Settings;
  signingSecret: string;
  cacheDir: string;
  /** Extra environment, e.g. REQUEST_TIMEOUT_MS. */
  env?: Record<string, string>;
  onLine?: (line: string) => void;
}

export interface RunningWorker {
  url: string;
  process: ManagedProcess;
}

/** One GPU worker process (CPU here), serving the index store in the S3 bucket. */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  await mkdir(options.cacheDir, { recursive: true });
  const process = startProcess({
    name: options.name,
    command: globalThis.process.execPath,
    args: [RUN_TS, "gpu-worker/src/server.ts"],
    cwd: ROOT,
    env: {
      ...globalThis.process.env,
      PORT: String(options.port),
      HOST: "127.0.0.1",
      MODEL_DIR: options.modelDir,
      HYP_SIGNING_SECRETS: options.signingSecret,
      INDEX_STORE: `s3://${options.s3.bucket}`,
      S3_ENDPOINT: options.s3.endpoint,
      S3_REGION: options.s3.region,
      S3_ACCESS_KEY_ID: options.s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: options.s3.secretAccessKey,
      S3_FORCE_PATH_STYLE: "1",
      SHARD_CACHE_DIR: options.cacheDir,
      SHARD_CACHE_BYTES: String(2 * 2 ** 30),
      LOG_LEVEL: "warn",
      ...options.env,
    },
    ...(options.onLine ? { onLine: options.onLine } : {}),
  });
  const url = `http://127.0.0.1:${options.port}`;
  await waitForHttp(`${url}/healthz`, 120_000, process);
  return { url, process };
}

export interface EdgeOptions {
  port: number;
  /** wrangler's local state (D1, Durable Objects, cache): the stack's persistence across restarts. */
  persistDir: string;
  workers: string[];
  s3: S3Settings;
  adminToken: string;
  signingSecret: string;
  vars?: Record<string, string>;
  onLine?: (line: string) => void;
}

export interface RunningEdge {
  url: string;
  process: ManagedProcess;
}

const WRANGLER_ENV = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "true" };

/** Applies the D1 migrations to the local database, then runs the edge under `wrangler dev`. */
export async function startEdge(options: EdgeOptions): Promise<RunningEdge> {
  await mkdir(options.persistDir, { recursive: true });
  const migrate = startProcess({
    name: "d1-migrate",
    command: process.execPath,
    args: [WRANGLER, "d1", "migrations", "apply", "hypencoder", "--local", "--persist-to", options.persistDir],
    cwd: ROOT,
    env: WRANGLER_ENV,
    ...(options.onLine ? { onLine: options.onLine } : {}),
  });
  const code = await migrate.exited;
  if (code !== 0) throw new Error(`wrangler d1 migrations apply failed (${code})`);

  // Secrets go through an env file, which wrangler shows as "(hidden)"; --var values are printed.
  const secretsFile = join(options.persistDir, "edge-secrets.env");
  const secrets: Record<string, string> = {
    WORKER_SIGNING_SECRET: options.signingSecret,
    ADMIN_TOKEN: options.adminToken,
    S3_ACCESS_KEY_ID: options.s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: options.s3.secretAccessKey,
  };
  await writeFile(secretsFile, Object.entries(secrets).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n") + "\n", { mode: 0o600 });
  const vars: Record<string, string> = {
    GPU_WORKERS: options.workers.join(","),
    S3_ENDPOINT: options.s3.endpoint,
    S3_REGION: options.s3.region,
    S3_BUCKET: options.s3.bucket,
    ...options.vars,
  };
  const process_ = startProcess({
    name: "edge",
    command: process.execPath,
    args: [
      WRANGLER,
      "dev",
      "--local",
      "--ip",
      "127.0.0.1",
      "--port",
      String(options.port),
      "--persist-to",
      options.persistDir,
      "--show-interactive-dev-session=false",
      "--env-file",
      secretsFile,
      ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
    ],
    cwd: ROOT,
    env: WRANGLER_ENV,
    ...(options.onLine ? { onLine: options.onLine } : {}),
  });
  const url = `http://127.0.0.1:${options.port}`;
  await waitForHttp(`${url}/healthz`, 120_000, process_);
  return { url, process: process_ };
}

export interface StackOptions {
  /** Working directory: worker shard caches and wrangler's state (D1, cache) live here. */
  dir: string;
  modelDir: string;
  s3: S3Settings;
  workers: number;
  signingSecret: string;
  adminToken: string;
  /** Fixed ports (the dev stack); free ports otherwise (tests). */
  edgePort?: number;
  workerPorts?: number[];
  edgeVars?: Record<string, string>;
  workerEnv?: Record<string, string>;
  onLine?: (name: string) => ((line: string) => void) | undefined;
}

export interface RunningStack {
  edge: RunningEdge;
  workers: RunningWorker[];
  options: StackOptions;
}

/** Starts the GPU workers and the edge that routes to them. */
export async function startStack(options: StackOptions): Promise<RunningStack> {
  const ports = options.workerPorts ?? (await Promise.all(Array.from({ length: options.workers }, () => freePort())));
  const workers = await Promise.all(ports.map((port, i) => startWorker(workerOptions(options, i, port))));
  const edge = await startEdge(edgeOptions(options, options.edgePort ?? (await freePort()), workers));
  return { edge, workers, options };
}

/** Starts worker `i` of a running stack again, on the port, shard cache and settings it had. */
export async function restartWorker(stack: RunningStack, i: number): Promise<RunningWorker> {
  const worker = await startWorker(workerOptions(stack.options, i, Number(new URL(stack.workers[i]!.url).port)));
  stack.workers[i] = worker;
  return worker;
}

/** Starts the edge of a running stack again, on its port, with its state and workers. */
export async function restartEdge(stack: RunningStack): Promise<RunningEdge> {
  stack.edge = await startEdge(edgeOptions(stack.options, Number(new URL(stack.edge.url).port), stack.workers));
  return stack.edge;
}

function workerOptions(options: StackOptions, i: number, port: number): WorkerOptions {
  return {
    name: `worker-${i}`,
    port,
    modelDir: options.modelDir,
    s3: options.s3,
    signingSecret: options.signingSecret,
    cacheDir: join(options.dir, `shard-cache-${i}`),
    ...(options.workerEnv ? { env: options.workerEnv } : {}),
    ...lineSink(options, `worker-${i}`),
  };
}

function edgeOptions(options: StackOptions, port: number, workers: readonly RunningWorker[]): EdgeOptions {
  return {
    port,
    persistDir: join(options.dir, "wrangler-state"),
    workers: workers.map((w) => w.url),
    s3: options.s3,
    adminToken: options.adminToken,
    signingSecret: options.signingSecret,
    ...(options.edgeVars ? { vars: options.edgeVars } : {}),
    ...lineSink(options, "edge"),
  };
}

function lineSink(options: StackOptions, name: string): { onLine?: (line: string) => void } {
  const sink = options.onLine?.(name);
  return sink ? { onLine: sink } : {};
}
