/** Errors of sweeps; statuses in service/errors.ts. */

/**
 * A sweep that would have to guess: a kept version's manifest is unreadable, so the keys it
 * references are unknown. Nothing is deleted (neither versions, nor WAL, nor uploads).
 */
export class SweepRefusedError extends Error {
  override name = "SweepRefusedError";
}
