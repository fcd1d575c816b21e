/**
 * Every error the worker returns is JSON `{"error":{"code","message"}}` (or an `error` frame once a
 * frame stream has started). The modules below the service throw their own errors, with no HTTP in
 * them (index/search-errors.ts, index/build/errors.ts, model/runtime/errors.ts); ERROR_STATUSES is
 * the one table that gives them statuses, and toApiError the one function that applies it.
 *
 * Only request mistakes are 4xx, with their message. Anything the table does not name, including a
 * RangeError from an internal invariant check, is a 500 that says nothing but the request id: its
 * detail goes to the worker log (error name, message and stack; messages name sizes and keys,
 * never document text).
 */
import { ZodError } from "zod";
import { FilterError } from "../../../shared/filter/filter.ts";
import { BuildConflictError, BuildQueueFullError, BuildsClosedError, BuildsUnavailableError } from "../index/build/errors.ts";
import { SweepRefusedError } from "../index/sweep/errors.ts";
import { AnswerTooLargeError, IndexNotFoundError, IndexUnavailableError, ModelMismatchError, SearchRequestError } from "../index/search-errors.ts";
import { describeZodError } from "../io/zod-issues.ts";
import { ModelLimitError } from "../model/runtime/errors.ts";
import { BatchHashMismatchError, DocumentNotFoundError, StorageUnavailableError, WalConflictError } from "../index/living/errors.ts";

export { describeZodError };

export interface ApiErrorBody {
  error: { code: string; message: string };
}

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra response headers, e.g. Retry-After. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): ApiErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

/** Why a request's signal fired: its deadline, or the client going away. */
export function abortError(reason: unknown): ApiError {
  if (reason instanceof ApiError) return reason;
  if ((reason as { name?: string } | undefined)?.name === "TimeoutError") {
    return new ApiError(504, "timeout", "the request did not finish within the worker's time limit");
  }
  // 499 (nginx's "client closed request"): nobody reads it, but logs and metrics show what happened.
  return new ApiError(499, "client_closed", "the client closed the request");
}

// Constructor parameters are never[] so that any error class fits, whatever its constructor takes.
type ErrorClass<E> = abstract new (...args: never[]) => E;

interface ErrorStatus {
  type: ErrorClass<unknown>;
  answer: (error: never) => ApiError;
  /** The client gets a summary; the full error (it may name store keys) goes to the log. */
  logDetail?: boolean;
}

const status = <E>(type: ErrorClass<E>, answer: (error: E) => ApiError, options: { logDetail?: boolean } = {}): ErrorStatus => ({
  type,
  answer,
  ...options,
});
const invalidRequest = (error: Error) => new ApiError(400, "invalid_request", error.message);

/** Domain errors and their answers; the first entry whose class the error is an instance of wins. */
export const ERROR_STATUSES: readonly ErrorStatus[] = [
  status(ApiError, (e) => e),
  // Request validation: the schema, then what only the index or the model can check.
  status(ZodError, (e) => new ApiError(400, "invalid_request", describeZodError(e))),
  status(SearchRequestError, invalidRequest),
  // A filter the index's declared fields do not allow (its message names the path and field).
  status(FilterError, (e) => new ApiError(400, "invalid_filter", e.message)),
  status(AnswerTooLargeError, (e) => new ApiError(400, "answer_too_large", e.message)),
  status(ModelLimitError, invalidRequest),
  status(IndexNotFoundError, (e) => new ApiError(404, "index_not_found", e.message)),
  status(BuildConflictError, (e) => new ApiError(409, "build_conflict", e.message)),
  status(ModelMismatchError, (e) => new ApiError(409, "model_mismatch", e.message)),
  status(BuildsUnavailableError, (e) => new ApiError(501, "builds_unavailable", e.message)),
  status(BuildQueueFullError, (e) => new ApiError(503, "build_queue_full", e.message, { "retry-after": "60" })),
  status(BuildsClosedError, (e) => new ApiError(503, "shutting_down", e.message, { "retry-after": "1" })),
  // A sweep that cannot read a kept manifest deletes nothing.
  status(SweepRefusedError, (e) => new ApiError(409, "sweep_refused", e.message)),
  status(IndexUnavailableError, (e) => new ApiError(503, "index_unavailable", `${e.summary} (details in the worker log)`), { logDetail: true }),
  // Living indexes (index/living/errors.ts).
  status(BatchHashMismatchError, (e) => new ApiError(400, "batch_hash_mismatch", e.message)),
  status(DocumentNotFoundError, (e) => new ApiError(404, "document_not_found", e.message)),
  status(WalConflictError, (e) => new ApiError(409, "wal_conflict", e.message)),
  status(StorageUnavailableError, (e) => new ApiError(503, "storage_unavailable", `${e.summary} (details in the worker log)`, { "retry-after": "5" }), { logDetail: true }),
];

export interface MappedError {
  error: ApiError;
  /** A 500: the client learns nothing but the request id. */
  isInternal: boolean;
  /** Whether the thrown error must be logged in full (internal errors and summarised ones). */
  logDetail: boolean;
}

/** Maps a thrown value to the error the client sees; `requestId` is named in a 500's message. */
export function toApiError(error: unknown, requestId?: string): MappedError {
  const entry = ERROR_STATUSES.find((s) => error instanceof s.type);
  if (entry) return { error: (entry.answer as (e: unknown) => ApiError)(error), isInternal: false, logDetail: entry.logDetail === true };
  const name = (error as { name?: string } | undefined)?.name;
  if (name === "TimeoutError" || name === "AbortError") return { error: abortError(error), isInternal: false, logDetail: false };
  const message = requestId === undefined ? "internal error" : `internal error (request id ${requestId})`;
  return { error: new ApiError(500, "internal", message), isInternal: true, logDetail: true };
}
