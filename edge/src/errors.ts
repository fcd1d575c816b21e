/**
 * The edge's errors, and the one table that turns anything thrown during a request into the public
 * error shape {"error":{"code","message"}}: `toApiError`. app.ts's onError (`handleError`) renders it
 * as JSON; a streamed search renders it as its final `error` frame.
 */
import type { Context, ErrorHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { FilterError } from "../../shared/filter/filter.ts";

export interface ApiErrorBody {
  error: { code: string; message: string };
}

export function errorResponse(c: Context, status: ContentfulStatusCode, code: string, message: string, headers?: HeadersInit): Response {
  return c.json<ApiErrorBody>({ error: { code, message } }, status, headers as Record<string, string> | undefined);
}

/**
 * Thrown anywhere in a request (routes, middleware, helpers); app.onError turns it into the JSON
 * error shape. Throwing keeps handlers linear: no `if (!ok) return c.json(...)` after every step.
 * The message is sent to the client, so it must never hold secrets or internals.
 */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export const notFound = (what: string): ApiError => new ApiError(404, "not_found", `${what} not found`);

/**
 * A GPU worker refused the request itself (a 4xx other than 408/429, see routing/worker-client.ts):
 * retrying on another worker would not help. `code` and `message` are the worker's, which it writes
 * to be client-safe (gpu-worker/src/service/errors.ts).
 */
export class WorkerRejectedError extends Error {
  override name = "WorkerRejectedError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** nginx's "client closed request": not a status Hono's types list, so it is cast once, here. */
const CLIENT_CLOSED_REQUEST = 499 as ContentfulStatusCode;

/**
 * The one error-mapping table. `clientSignal` is the client request's signal: once the client has
 * gone away nobody reads the answer, so whatever failed is a 499 and nothing is logged.
 */
export function toApiError(error: unknown, clientSignal?: AbortSignal): ApiError {
  if (clientSignal?.aborted) return new ApiError(CLIENT_CLOSED_REQUEST, "client_closed_request", "the client closed the request");
  if (error instanceof ApiError) return error;
  // An invalid search filter (shared/filter/filter.ts): its message names the path and the field.
  if (error instanceof FilterError) return new ApiError(400, "invalid_request", error.message);
  if (error instanceof WorkerRejectedError) {
    // The edge validated the request with the worker's own schemas, so a worker 400 is about this
    // input (e.g. too many tokens for the model) and is passed on. Any other refusal is a contract
    // bug between edge and worker: logged for the operator, hidden from the client.
    if (error.status === 400) return new ApiError(400, error.code, error.message);
    console.error("a GPU worker refused a request", error.status, error.code);
    return new ApiError(502, "upstream_rejected", "a GPU worker refused the request");
  }
  if (error instanceof HTTPException && error.status < 500) return new ApiError(error.status, "bad_request", error.message || "bad request");
  // Never echo internals (stack traces, upstream URLs, secrets) to clients; log only the type and message
  // (no request headers: they carry API keys).
  console.error("unhandled edge error", error instanceof Error ? `${error.name}: ${error.message}` : typeof error);
  return new ApiError(500, "internal", "internal error");
}

/** app.onError: every error of every route, as JSON. */
export const handleError: ErrorHandler = (error, c) => {
  const mapped = toApiError(error, c.req.raw.signal);
  return errorResponse(c, mapped.status, mapped.code, mapped.message, mapped.headers);
};
