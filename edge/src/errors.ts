/** Every error the public API returns has this shape: {"error":{"code","message"}}. */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export interface ApiErrorBody {
  error: { code: string; message: string };
}

export function errorResponse(c: Context, status: ContentfulStatusCode, code: string, message: string): Response {
  return c.json<ApiErrorBody>({ error: { code, message } }, status);
}
