/**
 * Errors of the living-index write and read paths (WAL writes, document reads, the tail). Like
 * search-errors.ts they carry no HTTP; service/errors.ts gives them their statuses.
 */

/** The WAL object of this seq exists with another batch: the seq was used by a different write. */
export class WalConflictError extends Error {
  override name = "WalConflictError";
}

/**
 * The request's batchHash is not the hash of the batch it carries (the edge and the worker disagree
 * about the canonical form, or the body was changed): the request's mistake, never written.
 */
export class BatchHashMismatchError extends RangeError {
  override name = "BatchHashMismatchError";
}

/** No live document with the id: never written, deleted, or replaced by a delete in the tail. */
export class DocumentNotFoundError extends Error {
  override name = "DocumentNotFoundError";
}

/**
 * The object store did not answer (or answered with an error that is not "not found" / "exists"):
 * nothing is known to be written, so the caller may retry. `summary` is safe to show a client; the
 * message adds the store's error, which may name keys.
 */
export class StorageUnavailableError extends Error {
  override name = "StorageUnavailableError";
  constructor(
    readonly summary: string,
    cause: unknown,
  ) {
    super(cause instanceof Error ? `${summary}: ${cause.message}` : summary, { cause });
  }
}
