/** Every error the public API returns has this shape: {"error":{"code","message"}}. */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

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
