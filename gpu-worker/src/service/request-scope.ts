/**
 * The life of one admitted request: its abort signal (deadline, client disconnect, or an explicit
 * cancel such as a closed response stream) and its admission permit. `runAdmitted` is the one place
 * that turns "the signal fired" into 504/499, whatever the aborted work happened to throw.
 */
import type { Admission } from "./admission.ts";
import { abortError } from "./errors.ts";

export interface RequestScope {
  signal: AbortSignal;
  /** Milliseconds waited for admission. */
  queuedMs: number;
  /** When the request arrived (performance.now()). */
  startedAt: number;
}

export interface ScopeOptions {
  admission: Admission;
  timeoutMs: number;
  /** The HTTP request's own signal: fires when the client disconnects. */
  clientSignal?: AbortSignal;
  /** Fires when the caller gives up (e.g. the response stream was cancelled). */
  cancelSignal?: AbortSignal;
}

export async function runAdmitted<T>(options: ScopeOptions, work: (scope: RequestScope) => Promise<T>): Promise<T> {
  const startedAt = performance.now();
  const signals = [AbortSignal.timeout(options.timeoutMs)];
  if (options.clientSignal) signals.push(options.clientSignal);
  if (options.cancelSignal) signals.push(options.cancelSignal);
  const signal = AbortSignal.any(signals);
  let permit;
  try {
    permit = await options.admission.acquire(signal);
  } catch (error) {
    if (signal.aborted) throw abortError(signal.reason);
    throw error;
  }
  try {
    const result = await work({ signal, queuedMs: permit.queuedMs, startedAt });
    // Work that ignored its signal still fails the request: an answer after the deadline is a 504.
    if (signal.aborted) throw abortError(signal.reason);
    return result;
  } catch (error) {
    if (signal.aborted) throw abortError(signal.reason);
    throw error;
  } finally {
    permit.release();
  }
}
