/** `c.executionCtx.waitUntil`, for work that must outlive the response (cache writes, build dispatch, slot releases). */
import type { Context } from "hono";

export function waitUntil(c: Context, promise: Promise<unknown>): void {
  try {
    c.executionCtx.waitUntil(promise);
  } catch {
    // No ExecutionContext (app.request without one): the work still runs, just unawaited.
  }
}
