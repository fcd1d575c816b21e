/**
 * One signed HTTP call to a GPU worker. Every edge → worker request goes through here, so none can
 * go out unsigned (shared/api/signing.ts: the worker refuses unsigned or stale requests).
 */
import { signRequest } from "../../../shared/api/signing.ts";

export type Fetcher = typeof fetch;

export interface WorkerCallInput {
  fetcher: Fetcher;
  secret: string;
  /** Base URL from the pool, without trailing slash. */
  worker: string;
  method: "GET" | "POST";
  /** Path plus query string, e.g. /v1/search; signed exactly as sent. */
  path: string;
  tenant: string;
  /** JSON-serialisable body (POST). */
  json?: unknown;
  accept?: string;
  signal?: AbortSignal;
}

const encoder = new TextEncoder();

export async function callWorker(input: WorkerCallInput): Promise<Response> {
  const body = input.json === undefined ? undefined : encoder.encode(JSON.stringify(input.json));
  const signature = await signRequest({ secret: input.secret, method: input.method, path: input.path, tenant: input.tenant, body });
  const headers: Record<string, string> = { ...signature, accept: input.accept ?? "application/json" };
  if (body) headers["content-type"] = "application/json";
  return input.fetcher(`${input.worker}${input.path}`, {
    method: input.method,
    headers,
    body,
    signal: input.signal,
  });
}

/** Fails the call after `ms`, or as soon as `parent` aborts; `done()` clears the timer. */
export function attemptSignal(parent: AbortSignal | undefined, ms: number): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`worker did not answer within ${ms} ms`, "TimeoutError")), ms);
  const onParentAbort = () => controller.abort(parent!.reason);
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener("abort", onParentAbort, { once: true });
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParentAbort);
    },
  };
}
