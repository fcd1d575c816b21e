/**
 * The one error type for index data that is malformed, corrupt, truncated or from an
 * unsupported version: shards, manifests and keys. Callers catch it to refuse (never serve)
 * the data; the message names what is wrong and, where known, which object.
 */
export class IndexFormatError extends Error {
  override name = "IndexFormatError";
}
