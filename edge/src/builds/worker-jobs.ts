/**
 * A GPU worker's job (a build or a compaction: the worker runs both through its build manager),
 * polled and cancelled on the worker that accepted it. Shared by the builds route and
 * living/maintenance.ts.
 */
import type { BuildStatus } from "../../../shared/api/worker-api.ts";
import type { EdgeBindings } from "../env.ts";
import { WorkerRejectedError } from "../errors.ts";
import { attemptWorker, type Fetcher } from "../routing/worker-client.ts";
import type { WorkerPoolConfig } from "../routing/worker-pool.ts";

export interface WorkerJobRef {
  /** The worker's base URL (the one that accepted the job). */
  worker: string;
  jobId: string;
  tenant: string;
}

export type PollResult = { kind: "status"; status: BuildStatus } | { kind: "lost" } | { kind: "unreachable" };

/** GET /v1/builds/:jobId on the job's worker. Never throws for a worker's trouble. */
export async function pollWorkerJob(fetcher: Fetcher, pool: WorkerPoolConfig, job: WorkerJobRef, signal?: AbortSignal): Promise<PollResult> {
  try {
    const outcome = await attemptWorker(
      { fetcher, secret: pool.secret, worker: job.worker, method: "GET", path: `/v1/builds/${encodeURIComponent(job.jobId)}`, tenant: job.tenant },
      { timeoutMs: pool.timeoutMs, parent: signal, read: async (response) => (await response.json()) as BuildStatus },
    );
    return outcome.ok ? { kind: "status", status: outcome.value } : { kind: "unreachable" };
  } catch (error) {
    if (!(error instanceof WorkerRejectedError)) throw error;
    // 404: the worker no longer knows the job (it restarted). Other refusals: treated as not reachable.
    return error.status === 404 ? { kind: "lost" } : { kind: "unreachable" };
  }
}

/** Asks the job's worker to stop it; true when it answered, false when it did not (it may be gone). Never throws. */
export async function cancelWorkerJob(fetcher: Fetcher, pool: WorkerPoolConfig, job: WorkerJobRef): Promise<boolean> {
  try {
    const outcome = await attemptWorker(
      { fetcher, secret: pool.secret, worker: job.worker, method: "POST", path: `/v1/builds/${encodeURIComponent(job.jobId)}/cancel`, tenant: job.tenant },
      { timeoutMs: pool.timeoutMs, read: async (response) => (await response.json()) as BuildStatus },
    );
    return outcome.ok;
  } catch (error) {
    // 404: the worker no longer knows the job, so it is not running either.
    return (error as { status?: number })?.status === 404;
  }
}

/** How long a running job's worker may stay unreachable before the job is given up (BUILD_SILENCE_SECONDS). */
export const DEFAULT_BUILD_SILENCE_SECONDS = 900;

export function buildSilenceLimitSeconds(env: Pick<EdgeBindings, "BUILD_SILENCE_SECONDS">): number {
  const seconds = Number(env.BUILD_SILENCE_SECONDS ?? DEFAULT_BUILD_SILENCE_SECONDS);
  return Number.isFinite(seconds) && seconds > 0 ? seconds : DEFAULT_BUILD_SILENCE_SECONDS;
}
