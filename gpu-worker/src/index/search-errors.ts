/**
 * Errors of the index read path. The HTTP service maps RangeError to 400 (errors.ts), so request
 * mistakes extend it; the other two are server-side conditions the backend turns into statuses.
 */

/** The request names something the index does not have (a shard, a stored field). */
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
