/**
 * The size of a search answer, counted hit by hit as it is assembled, so that k = 1000 hits with
 * 1M-character stored texts fail after the first few dozen, not after a gigabyte has been built.
 * The count is what the hit costs in JSON (id, score, fields), a close bound for msgpack too.
 */
import type { Hit } from "../../../shared/api/worker-api.ts";
import { AnswerTooLargeError } from "./search-errors.ts";

/** Braces, keys and a score's digits: a generous per-hit constant. */
const HIT_OVERHEAD_BYTES = 48;

export class AnswerBudget {
  private bytes = 0;
  private hits = 0;

  constructor(
    private readonly maxBytes: number,
    /** The hits asked for, for the message. */
    private readonly k: number,
  ) {}

  /** Counts one hit; throws AnswerTooLargeError once the answer passes the limit. */
  add(hit: Hit): void {
    this.hits++;
    this.bytes += HIT_OVERHEAD_BYTES + Buffer.byteLength(hit.id, "utf8") + (hit.fields ? Buffer.byteLength(JSON.stringify(hit.fields), "utf8") : 0);
    if (this.bytes > this.maxBytes) {
      throw new AnswerTooLargeError(
        `the answer would be larger than the worker's limit of ${this.maxBytes} bytes (passed at hit ${this.hits} of k = ${this.k}); ask for a smaller k or fewer fields`,
      );
    }
  }
}

/** Checks a whole list of hits (answers assembled elsewhere). */
export function checkAnswerSize(hits: readonly Hit[], maxBytes: number, k: number): void {
  const budget = new AnswerBudget(maxBytes, k);
  for (const hit of hits) budget.add(hit);
}
