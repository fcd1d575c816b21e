/**
 * One signed call to ONE worker: the first rendezvous owner of a stable key (a tenant id, say), and
 * on a network error, timeout, 408/429/5xx or an answer `read` refuses, the next owner (up to
 * `maxAttempts`). The whole body is read inside the attempt, so a worker that dies mid-answer also
 * fails over. For small answers only (q-nets, rerank scores); searches use fanout.ts.
 */
import { ApiError } from "../errors.ts";
import type { FanoutAttempt } from "./fanout.ts";
import { ownersFor } from "./rendezvous.ts";
import { attemptWorker, type Fetcher } from "./worker-client.ts";
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

/** The first owner's answer (failing over as above), or null when no owner answered: the caller says what that means. */
export async function tryOwners<T>(input: OwnerCallInput<T>): Promise<OwnerCallResult<T> | null> {
  const owners = ownersFor(input.key, input.pool.workers).slice(0, Math.max(1, input.maxAttempts ?? 3));
  const attempts: FanoutAttempt[] = [];
  for (const worker of owners) {
    input.signal?.throwIfAborted();
    const outcome = await attemptWorker(
      { fetcher: input.fetcher, secret: input.pool.secret, worker, method: "POST", path: input.path, tenant: input.tenant, json: input.json, accept: input.accept },
      { timeoutMs: input.pool.timeoutMs, parent: input.signal, read: input.read },
    );
    if (outcome.ok) {
      attempts.push({ worker, shards: [], ok: true });
      return { worker, value: outcome.value, attempts };
    }
    attempts.push({ worker, shards: [], ok: false, reason: outcome.reason });
  }
  console.error("no worker answered", input.path, JSON.stringify(attempts));
  return null;
}

/** tryOwners for a client's request: no answer is a 503 that asks it to retry shortly. */
export async function callOwner<T>(input: OwnerCallInput<T>): Promise<OwnerCallResult<T>> {
  const answered = await tryOwners(input);
  if (answered) return answered;
  throw new ApiError(503, "workers_unavailable", "no GPU worker answered; try again shortly", { "retry-after": "1" });
}
