/**
 * Errors of index builds. They say what went wrong in the builder's terms; the HTTP service decides
 * the status (service/errors.ts), and a failed job's status shows BuildInputError and
 * BuildConflictError as they are (build-manager.ts, describeFailure). Anything else is internal.
 */

/**
 * Bad input: a malformed line, a duplicate id, a wrong embedding shape, a missing object. The
 * message says where and what kind of problem (input key, line, field), never document content, so
 * it may be logged; `detail` quotes the content (a JSON parser's excerpt, the bad id) for the
 * tenant's eyes only: it is kept in a private field, so a logger serialising the error cannot see it.
 */
export class BuildInputError extends Error {
  override name = "BuildInputError";
  readonly #detail: string | undefined;

  constructor(message: string, detail?: string) {
    super(message);
    this.#detail = detail;
  }

  /** What the tenant sees in the build's error: the message, with the quoted detail. */
  get tenantMessage(): string {
    return this.#detail === undefined ? this.message : `${this.message}: ${this.#detail}`;
  }
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

/** The build went past one of its limits (limits.ts): its input is too large, or it took too long. */
export class BuildLimitError extends Error {
  override name = "BuildLimitError";
  constructor(
    readonly code: "input_too_large" | "build_timeout",
    message: string,
  ) {
    super(message);
  }
}
