/**
 * One signed call to ONE worker: the first rendezvous owner of a stable key (a tenant id, say), and
 * on a network error, timeout, 408/429/5xx or an answer `read` refuses, the next owner (up to
 * `maxAttempts`). The whole body is read inside the attempt, so a worker that dies mid-answer also
 * fails over. For small answers only (q-nets, rerank scores); searches use fanout.ts.
 */
import { ApiError } from "../errors.ts";
import { type FanoutAttempt, WorkerRejectedError } from "./fanout.ts";
import { ownersFor } from "./rendezvous.ts";
import { attemptSignal, callWorker, type Fetcher } from "./worker-client.ts";
import type { WorkerPoolConfig } from "./worker-pool.ts";

export interface OwnerCallInput<T> {
  /** Placement key: the same key always goes to the same worker while the pool is unchanged. */
  key: string;
  pool: WorkerPoolConfig;
  fetcher: Fetcher;
  path: string;
  tenant: string;
  json: unknown;
  accept: string;
  /** The client's signal: aborting it cancels the call in flight and rejects with its reason. */
  signal?: AbortSignal;
  /** Owners tried (first choice included); default 3, capped by the pool size. */
  maxAttempts?: number;
  /** Reads and checks a 2xx answer; throwing (anything but WorkerRejectedError) fails over. */
  read: (response: Response, signal: AbortSignal) => Promise<T>;
}

export interface OwnerCallResult<T> {
  worker: string;
  value: T;
  attempts: FanoutAttempt[];
}

export async function callOwner<T>(input: OwnerCallInput<T>): Promise<OwnerCallResult<T>> {
  const owners = ownersFor(input.key, input.pool.workers).slice(0, Math.max(1, input.maxAttempts ?? 3));
  const attempts: FanoutAttempt[] = [];
  for (const worker of owners) {
    input.signal?.throwIfAborted();
    const attempt = attemptSignal(input.signal, input.pool.timeoutMs);
    try {
      const response = await callWorker({
        fetcher: input.fetcher,
        secret: input.pool.secret,
        worker,
        method: "POST",
        path: input.path,
        tenant: input.tenant,
        json: input.json,
        accept: input.accept,
        signal: attempt.signal,
      });
      if (response.ok) {
        const value = await input.read(response, attempt.signal);
        attempts.push({ worker, shards: [], ok: true });
        return { worker, value, attempts };
      }
      const status = response.status;
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
        // The worker's error messages are written to be client-safe (gpu-worker/src/service/errors.ts).
        const body = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
        throw new WorkerRejectedError(status, body?.error?.code ?? "worker_rejected", body?.error?.message ?? `worker answered ${status}`);
      }
      await response.body?.cancel().catch(() => {});
      attempts.push({ worker, shards: [], ok: false, reason: `http ${status}` });
    } catch (error) {
      if (error instanceof WorkerRejectedError) throw error;
      if (input.signal?.aborted) throw input.signal.reason;
      const name = (error as Error)?.name;
      const timedOut = name === "TimeoutError" || attempt.signal.reason?.name === "TimeoutError";
      attempts.push({ worker, shards: [], ok: false, reason: timedOut ? "timeout" : (error as Error)?.message?.slice(0, 200) || name || "error" });
    } finally {
      attempt.done();
    }
  }
  console.error("no worker answered", input.path, JSON.stringify(attempts));
  throw new ApiError(503, "workers_unavailable", "no GPU worker answered; try again shortly", { "retry-after": "1" });
}
