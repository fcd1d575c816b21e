/**
 * The GPU worker pool, from the GPU_WORKERS binding: comma-separated base URLs, stable names such as
 * a Kubernetes StatefulSet's (http://gpu-0.gpu:8081,http://gpu-1.gpu:8081). Stable names matter:
 * rendezvous placement hashes the URL, so renaming a worker moves its shards.
 */
import { DEFAULT_WORKER_TIMEOUT_MS } from "../../../shared/api/worker-api.ts";
import type { WorkerBindings } from "../env.ts";
import { ApiError } from "../errors.ts";

/** Normalised (no trailing slash), de-duplicated base URLs; throws on anything that is not http(s). */
export function parseWorkerPool(value: string | undefined): string[] {
  const workers: string[] = [];
  for (const raw of (value ?? "").split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new Error(`GPU_WORKERS: ${JSON.stringify(entry)} is not a URL`);
    }
    if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search !== "" || url.hash !== "") {
      throw new Error(`GPU_WORKERS: ${JSON.stringify(entry)} must be an http(s) base URL without query or fragment`);
    }
    const base = `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
    if (!workers.includes(base)) workers.push(base);
  }
  return workers;
}

export interface WorkerPoolConfig {
  workers: string[];
  secret: string;
  timeoutMs: number;
}

// One attempt's limit at one worker, unless WORKER_TIMEOUT_MS says otherwise: longer than the worker's own.
export { DEFAULT_WORKER_TIMEOUT_MS };

/** The pool as a request needs it; a misconfiguration is a 503 to the client and a log line for the operator. */
export function workerPoolFromEnv(env: WorkerBindings): WorkerPoolConfig {
  let workers: string[];
  try {
    workers = parseWorkerPool(env.GPU_WORKERS);
  } catch (error) {
    console.error("invalid GPU_WORKERS", (error as Error).message);
    throw new ApiError(503, "workers_unavailable", "search workers are not configured");
  }
  if (workers.length === 0 || !env.WORKER_SIGNING_SECRET) {
    throw new ApiError(503, "workers_unavailable", "search workers are not configured");
  }
  const timeout = Number(env.WORKER_TIMEOUT_MS ?? DEFAULT_WORKER_TIMEOUT_MS);
  return {
    workers,
    secret: env.WORKER_SIGNING_SECRET,
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : DEFAULT_WORKER_TIMEOUT_MS,
  };
}
