/**
 * Errors of the index read path. They say what went wrong in the index's terms; the HTTP service
 * decides the status (service/errors.ts).
 */

/** The tenant's index version does not exist (no manifest), or this worker has no index store. */
export class IndexNotFoundError extends Error {
  override name = "IndexNotFoundError";
}

/**
 * The request names something the index does not have (a shard, a stored field): the client's
 * mistake, answered with the message. A RangeError, since the value is outside what the index
 * holds; the service recognises this class, not RangeError in general (those are internal).
 */
export class SearchRequestError extends RangeError {
  override name = "SearchRequestError";
}

/** The index was built with another model: its embeddings mean nothing to this model's q-nets. */
export class ModelMismatchError extends Error {
  override name = "ModelMismatchError";
}

/**
 * None of the shards asked for could be loaded (missing objects, failed verification). `summary`
 * is safe to show a client; the message adds the first failure, which may name store keys.
 */
export class IndexUnavailableError extends Error {
  override name = "IndexUnavailableError";
  constructor(
    readonly summary: string,
    cause: unknown,
  ) {
    super(cause instanceof Error ? `${summary}: ${cause.message}` : summary, { cause });
  }
}

/** The answer would pass the worker's size limit (MAX_ANSWER_BYTES); the message says how to ask for less. */
export class AnswerTooLargeError extends RangeError {
  override name = "AnswerTooLargeError";
}
