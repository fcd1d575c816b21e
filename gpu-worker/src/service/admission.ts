/**
 * Admission control: at most `concurrency` requests do model or index work at once, the rest wait in
 * a FIFO line, and when `limit` requests are running or waiting the next one is refused at once
 * (503 + Retry-After). Nothing is ever buffered without a bound: a saturated worker says so quickly
 * and the edge can retry elsewhere.
 *
 * Request bodies count too, before any work is admitted: the bytes of bodies still streaming in (not
 * yet checked against their signed hash) share one budget, `bodyBytesLimit`, so many slow or
 * abandoned uploads cannot pile up memory either.
 */
import { ApiError } from "./errors.ts";

export interface AdmissionOptions {
  /** Running plus waiting requests; beyond this the worker answers 503. */
  limit: number;
  /** Requests running at once. */
  concurrency: number;
  /** Bytes of request bodies being read at once, across requests; unbounded when omitted. */
  bodyBytesLimit?: number;
}

/** A held slot; `release` is idempotent. */
export interface Permit {
  /** Milliseconds spent waiting in line. */
  queuedMs: number;
  release(): void;
}

interface Waiter {
  resolve(): void;
  reject(reason: unknown): void;
}

export class Admission {
  private running = 0;
  private readonly waiting: Waiter[] = [];
  /** Smoothed time a permit is held, for Retry-After. */
  private holdMs = 100;
  private bodyBytes = 0;

  constructor(private readonly options: AdmissionOptions) {
    if (options.concurrency < 1 || options.limit < options.concurrency) {
      throw new RangeError(`admission needs 1 <= concurrency (${options.concurrency}) <= limit (${options.limit})`);
    }
  }

  get stats(): { running: number; waiting: number; limit: number } {
    return { running: this.running, waiting: this.waiting.length, limit: this.options.limit };
  }

  /** Bytes of bodies being read now. */
  get pendingBodyBytes(): number {
    return this.bodyBytes;
  }

  /** Counts `bytes` more of a body being read; throws a 503 ApiError when the budget is spent. */
  reserveBodyBytes(bytes: number): void {
    const limit = this.options.bodyBytesLimit ?? Infinity;
    if (this.bodyBytes + bytes > limit) {
      throw new ApiError(503, "overloaded", `the worker is reading its limit of request bodies (${limit} bytes); retry shortly`, { "retry-after": "1" });
    }
    this.bodyBytes += bytes;
  }

  /** Gives back bytes counted by reserveBodyBytes (the body was read, or the request failed). */
  releaseBodyBytes(bytes: number): void {
    this.bodyBytes = Math.max(0, this.bodyBytes - bytes);
  }

  /** Seconds until a slot is likely free: the line ahead times the smoothed hold time. */
  retryAfterSeconds(): number {
    const rounds = (this.waiting.length + 1) / this.options.concurrency;
    return Math.min(60, Math.max(1, Math.ceil((rounds * this.holdMs) / 1000)));
  }

  /** Waits for a slot; throws a 503 ApiError when full, or the signal's reason if it fires first. */
  async acquire(signal?: AbortSignal): Promise<Permit> {
    signal?.throwIfAborted();
    if (this.running + this.waiting.length >= this.options.limit) {
      const seconds = this.retryAfterSeconds();
      throw new ApiError(503, "overloaded", `the worker is at its queue limit (${this.options.limit}); retry in ${seconds} s`, {
        "retry-after": String(seconds),
      });
    }
    const queuedAt = performance.now();
    if (this.running < this.options.concurrency) {
      this.running++;
    } else {
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          resolve: () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
          reject,
        };
        const onAbort = () => {
          const at = this.waiting.indexOf(waiter);
          if (at >= 0) this.waiting.splice(at, 1);
          reject(signal!.reason);
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        this.waiting.push(waiter);
      });
      // The releasing request handed its slot over, so `running` is already counted.
    }
    const startedAt = performance.now();
    let released = false;
    return {
      queuedMs: startedAt - queuedAt,
      release: () => {
        if (released) return;
        released = true;
        this.holdMs = 0.8 * this.holdMs + 0.2 * (performance.now() - startedAt);
        const next = this.waiting.shift();
        if (next) next.resolve();
        else this.running--;
      },
    };
  }
}
