/**
 * Talking to a GPU worker, in one place: the signed call (every edge → worker request goes through
 * `callWorker`, so none can go out unsigned: the worker refuses unsigned or stale requests), the
 * per-attempt signal, how a failed answer is classified, and how a worker's frames are decoded.
 * Routing (fanout.ts, owner-call.ts, builds) decides what to do with each outcome.
 */
import { FrameDecoder, FrameTooLargeError } from "../../../shared/api/frames.ts";
import { signRequest } from "../../../shared/api/signing.ts";
import { WORKER_FRAME_LIMIT_BYTES } from "../../../shared/api/worker-api.ts";
import { ApiError, WorkerRejectedError } from "../errors.ts";

export type Fetcher = typeof fetch;

/**
 * The Worker's own fetch (routes take a Fetcher so that tests can pass the fake pool). Wrapped, because
 * callers invoke it as `input.fetcher(…)`, and workerd throws "Illegal invocation" for a fetch called on another `this`.
 */
export const defaultFetcher: Fetcher = (input, init) => fetch(input, init);

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
  const target = `${input.worker}${input.path}`;
  // The host is signed, so a captured request is refused by every other worker.
  const signature = await signRequest({ secret: input.secret, method: input.method, host: new URL(target).host, path: input.path, tenant: input.tenant, body });
  const headers: Record<string, string> = { ...signature, accept: input.accept ?? "application/json" };
  if (body) headers["content-type"] = "application/json";
  return input.fetcher(target, {
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

export type AttemptOutcome<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface AttemptOptions<T> {
  /** This attempt's limit: a worker slower than this has failed. */
  timeoutMs: number;
  /** The caller's signal (the client's, or a fan-out's scope): once it aborts, its reason is thrown. */
  parent?: AbortSignal;
  /** Reads and checks a 2xx answer; throwing (anything but WorkerRejectedError) fails the attempt. */
  read: (response: Response, signal: AbortSignal) => Promise<T>;
}

/**
 * One attempt at one worker: the signed call under its own timeout, then `read`. A worker that is
 * down, slow, answers 408/429/5xx or an answer `read` refuses gives `{ ok: false, reason }`, for the
 * caller to fail over on; a refusal of the request (WorkerRejectedError), an answer over the frame
 * limit (a 400 `answer_too_large`) and the parent's abort are thrown.
 */
export async function attemptWorker<T>(call: Omit<WorkerCallInput, "signal">, options: AttemptOptions<T>): Promise<AttemptOutcome<T>> {
  const attempt = attemptSignal(options.parent, options.timeoutMs);
  try {
    const response = await callWorker({ ...call, signal: attempt.signal });
    if (!response.ok) return { ok: false, reason: await failedAnswerReason(response) };
    return { ok: true, value: await options.read(response, attempt.signal) };
  } catch (error) {
    if (options.parent?.aborted) throw options.parent.reason;
    if (error instanceof WorkerRejectedError) throw error;
    // Every worker would send the same oversized answer: asking the next one would only repeat the work.
    if (error instanceof FrameTooLargeError) throw answerTooLarge(error.maxFrameBytes);
    return { ok: false, reason: attemptErrorReason(error, attempt.signal) };
  } finally {
    attempt.done();
  }
}

/**
 * A worker's non-2xx answer. A refusal of the request itself (a 4xx other than 408/429) throws
 * WorkerRejectedError with the worker's code and message: retrying on another worker would not help.
 * Anything else (408, 429, 5xx) is that worker's trouble: its body is discarded and the reason
 * returned, for the caller to fail over on.
 */
async function failedAnswerReason(response: Response): Promise<string> {
  const status = response.status;
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
    const body = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
    throw new WorkerRejectedError(status, body?.error?.code ?? "worker_rejected", body?.error?.message ?? `worker answered ${status}`);
  }
  await response.body?.cancel().catch(() => {});
  return `http ${status}`;
}

/** Why an attempt threw (network error, timeout): "timeout", or the error's message; never a body. */
function attemptErrorReason(error: unknown, attempt: AbortSignal): string {
  const name = (error as Error)?.name;
  if (name === "TimeoutError" || attempt.reason?.name === "TimeoutError") return "timeout";
  return (error as Error)?.message?.slice(0, 200) || name || "error";
}

// Largest frame accepted from a worker (a q-net is well under it), so a garbled stream cannot buffer without limit.
export { WORKER_FRAME_LIMIT_BYTES };

/**
 * An answer too large to pass on is the request's fault (k × stored fields), so it is the client's
 * error, with what to change; the worker answers the same code when it bounds its own answers.
 */
export function answerTooLarge(maxBytes: number): ApiError {
  return new ApiError(400, "answer_too_large", `the answer is larger than ${maxBytes / 2 ** 20} MiB; ask for fewer hits (k) or fewer or smaller stored fields`);
}

/** The decoder for a worker's frames (search results, rerank scores). */
export function workerFrameDecoder(): FrameDecoder {
  return new FrameDecoder({ maxFrameBytes: WORKER_FRAME_LIMIT_BYTES });
}
