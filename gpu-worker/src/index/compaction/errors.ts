/**
 * Errors of compactions, in the index side's terms; the HTTP service gives them
 * statuses (service/errors.ts) and a failed job's status shows their code (build-manager.ts
 * describeFailure). Messages name versions, seqs and counts, never document content.
 */

export type CompactionErrorCode =
  /** The base version has no manifest (it was never published, or it has been swept). */
  | "base_not_found"
  /** The base or the WAL was written by another model than the worker's. */
  | "model_mismatch"
  /** The request contradicts the stored index (e.g. toSeq below the base's coveredSeq). */
  | "invalid_request";

/** The compaction cannot run on what the store holds; a retry of the same request fails the same way. */
export class CompactionInputError extends Error {
  override name = "CompactionInputError";
  constructor(
    readonly code: CompactionErrorCode,
    message: string,
  ) {
    super(message);
  }
}

