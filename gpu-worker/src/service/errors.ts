/**
 * Every error the worker returns is JSON `{"error":{"code","message"}}` (or an `error` frame once a
 * frame stream has started). `toApiError` is the one place that decides how a thrown value maps to a
 * status; anything it does not recognise becomes a generic 500, with the detail only in the log.
 */
import { ZodError } from "zod";
import { BuildConflictError, IndexNotFoundError } from "./index-backend.ts";

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

/** Formats zod issues as `path: message; …` (the first few), without echoing the input values. */
export function describeZodError(error: ZodError): string {
  const shown = error.issues.slice(0, 5).map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message));
  const more = error.issues.length > 5 ? `; and ${error.issues.length - 5} more` : "";
  return shown.join("; ") + more;
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

/** Maps a thrown value to the error the client sees. `isInternal` is true when the detail must be logged. */
export function toApiError(error: unknown): { error: ApiError; isInternal: boolean } {
  if (error instanceof ApiError) return { error, isInternal: false };
  if (error instanceof IndexNotFoundError) return { error: new ApiError(404, "index_not_found", error.message), isInternal: false };
  if (error instanceof BuildConflictError) return { error: new ApiError(409, "build_conflict", error.message), isInternal: false };
  if (error instanceof ZodError) return { error: new ApiError(400, "invalid_request", describeZodError(error)), isInternal: false };
  // The runtime throws RangeError for requests the model cannot serve (a token limit beyond its
  // position table, for example); its messages name limits, never the input text.
  if (error instanceof RangeError) return { error: new ApiError(400, "invalid_request", error.message), isInternal: false };
  const name = (error as { name?: string } | undefined)?.name;
  if (name === "TimeoutError" || name === "AbortError") return { error: abortError(error), isInternal: false };
  return { error: new ApiError(500, "internal", "internal error"), isInternal: true };
}
