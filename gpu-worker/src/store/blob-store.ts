/**
 * Where indexes, uploads and models live: an S3 prefix or a local folder, behind one
 * interface, with the same keys in both ("a local folder works as an index store exactly
 * like an S3 prefix"). Keys are "/"-separated and relative to the store's root.
 */
import type { Readable } from "node:stream";

export interface PutOptions {
  contentType?: string;
  /** The body's exact size, when known: streams of another length are refused. */
  bytes?: number;
  /**
   * Create only: if the key already exists the put fails with AlreadyExistsError and the object
   * is left as it was, decided atomically by the store (S3 `If-None-Match: *`, a hard link in a
   * folder). For small single-request bodies (a manifest), not multipart uploads.
   */
  ifAbsent?: boolean;
}

export interface BlobHead {
  bytes: number;
  etag?: string;
}

export interface BlobStore {
  /** For logs and errors, e.g. "s3://bucket/prefix/" or "/data/index-store". */
  describe(): string;
  /** The whole object. Throws NotFoundError if it does not exist. */
  get(key: string): Promise<Uint8Array>;
  /** The object as a stream; NotFoundError is thrown here, before any byte is read. */
  getStream(key: string): Promise<Readable>;
  /** Creates or replaces an object atomically: readers see the old or the new body, never a part. */
  put(key: string, body: Uint8Array | Readable, options?: PutOptions): Promise<void>;
  /** Size and etag, or undefined if there is no such object. */
  head(key: string): Promise<BlobHead | undefined>;
  /** Every key that starts with `prefix` (a plain string prefix, "" for all), sorted. */
  list(prefix: string): Promise<string[]>;
  /** Deletes one object; deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Deletes every object under `prefix`; returns how many. */
  deletePrefix(prefix: string): Promise<number>;
}

/** Something about one key of a store; `key` is relative to the store, `where` describes it. */
abstract class StoreKeyError extends Error {
  constructor(
    readonly key: string,
    problem: string,
    where: string,
  ) {
    super(`${problem}: ${key} in ${where}`);
  }
}

/** The object does not exist. */
export class NotFoundError extends StoreKeyError {
  override name = "NotFoundError";
  constructor(key: string, where: string) {
    super(key, "not found", where);
  }
}

export function isNotFound(e: unknown): e is NotFoundError {
  return e instanceof NotFoundError;
}

/** A put with `ifAbsent` found the key taken. */
export class AlreadyExistsError extends StoreKeyError {
  override name = "AlreadyExistsError";
  constructor(key: string, where: string) {
    super(key, "already exists", where);
  }
}

const MAX_KEY_BYTES = 1024; // S3's limit

/**
 * Throws unless `key` is a clean relative key: no leading "/", no empty, "." or ".."
 * segments, no backslashes or control characters. This is what keeps LocalStore inside
 * its root, and it keeps S3 keys the same as the folder paths.
 */
export function validateKey(key: string, what = "key"): string {
  const problem =
    typeof key !== "string" || key.length === 0
      ? "is empty"
      : new TextEncoder().encode(key).length > MAX_KEY_BYTES
        ? `is longer than ${MAX_KEY_BYTES} bytes`
        : /[\\\u0000-\u001f\u007f]/.test(key)
          ? "contains a backslash or control character"
          : key.split("/").some((s) => s === "" || s === "." || s === "..")
            ? "has an empty, '.' or '..' segment (or a leading or trailing '/')"
            : undefined;
  if (problem) throw new Error(`invalid ${what} ${JSON.stringify(key)}: ${problem}`);
  return key;
}

/** A list/delete prefix: "" or a key prefix, which may end with "/". */
export function validatePrefix(prefix: string): string {
  if (prefix === "") return prefix;
  validateKey(prefix.endsWith("/") ? prefix.slice(0, -1) : prefix, "prefix");
  return prefix;
}
