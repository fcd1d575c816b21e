/**
 * Errors of the index build. BuildInputError is the user's data being wrong (the message names the
 * input key and line); BuildQueueFullError is the worker being busy. Both are meant to be shown to
 * the tenant as they are; anything else that fails a build is internal.
 */
import { ApiError } from "../../service/errors.ts";

/** Bad input: a malformed line, a duplicate id, a wrong embedding shape, a missing object. */
export class BuildInputError extends Error {
  override name = "BuildInputError";
}

/**
 * Too many builds are waiting on this worker. An ApiError (503 with Retry-After) so the service's
 * one error mapping (toApiError) answers it correctly without knowing about builds.
 */
export class BuildQueueFullError extends ApiError {
  override name = "BuildQueueFullError";
  constructor(queued: number) {
    super(503, "build_queue_full", `${queued} builds are already waiting on this worker; try again later`, { "retry-after": "60" });
  }
}
