/**
 * Errors of index builds. They say what went wrong in the builder's terms; the HTTP service decides
 * the status (service/errors.ts), and a failed job's status shows BuildInputError and
 * BuildConflictError as they are (build-manager.ts, describeFailure). Anything else is internal.
 */

/** Bad input: a malformed line, a duplicate id, a wrong embedding shape, a missing object. */
export class BuildInputError extends Error {
  override name = "BuildInputError";
}

/** The version already exists, or the tenant's index already has a build queued or running. */
export class BuildConflictError extends Error {
  override name = "BuildConflictError";
}

/** Too many builds are waiting on this worker; a later try may be accepted. */
export class BuildQueueFullError extends Error {
  override name = "BuildQueueFullError";
  constructor(readonly queued: number) {
    super(`${queued} builds are already waiting on this worker; try again later`);
  }
}

/** The builder has been closed (the worker is shutting down) and takes no more builds. */
export class BuildsClosedError extends Error {
  override name = "BuildsClosedError";
  constructor() {
    super("the worker is shutting down");
  }
}

/** This worker has no index store to build into (INDEX_STORE is not set). */
export class BuildsUnavailableError extends Error {
  override name = "BuildsUnavailableError";
  constructor() {
    super("this worker does not build indexes: it has no index store (INDEX_STORE)");
  }
}
