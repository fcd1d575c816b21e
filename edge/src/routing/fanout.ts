/**
 * A search across an index version's shards: each shard goes to its first rendezvous owner, shards
 * with the same owner travel in one request, the requests run in parallel, and their results are
 * merged into the global top-k. The WAL tail of a strong search is one more "shard", TAIL_SHARD_ID,
 * placed and failed over like the others (every worker gets the request's `tail` range, to hide the
 * segment rows it replaces or deletes; only the tail shard's worker scores the tail's documents).
 *
 * Failures: a worker that errors, times out, answers garbage or reports shards it could not search
 * has those shards retried on each shard's NEXT owner (which loads the shard from S3 on demand),
 * skipping workers that already failed during this query. Shards that run out of owners (or of
 * `maxAttempts`) are reported: the answer is then `partial: true` with `missingShards`, never
 * silently incomplete. A client abort cancels every upstream fetch and rejects with its reason.
 */
import type { ProgressFrame, ResultFrame } from "../../../shared/api/frames.ts";
import { MSGPACK_FRAMES_CONTENT_TYPE, REJECTION_FRAME_STATUS, type SearchRequest, type SearchStats } from "../../../shared/api/worker-api.ts";
import { WorkerRejectedError } from "../errors.ts";
import { mergeStats, mergeTopK } from "./merge.ts";
import { TAIL_SHARD_ID } from "../../../shared/api/living-api.ts";
import { indexOwnerKey, ownersFor, shardPlacementKey } from "./rendezvous.ts";
import { type AttemptOutcome, attemptWorker, type Fetcher, workerFrameDecoder } from "./worker-client.ts";

export interface FanoutInput {
  /** The worker request minus `shards` (the fan-out sets them per worker). */
  request: Omit<SearchRequest, "shards">;
  /** Every shard of the version; must be non-empty. */
  shards: readonly string[];
  workers: readonly string[];
  fetcher: Fetcher;
  secret: string;
  /** Per-attempt limit: a worker slower than this is treated as failed and its shards move on. */
  timeoutMs: number;
  /** Owners tried per shard (first choice included); default 3, capped by the pool size. */
  maxAttempts?: number;
  /** The client's signal: aborting it cancels all upstream requests. */
  signal?: AbortSignal;
  /** Advisory progress frames as workers send them (only for streamed responses). */
  onProgress?: (frame: ProgressFrame) => void;
}

export interface FanoutAttempt {
  worker: string;
  shards: string[];
  ok: boolean;
  /** Why it failed: "timeout", "http 503", "error frame shard_unavailable", …; never a body. */
  reason?: string;
}

export interface FanoutResult extends ResultFrame {
  /** Which worker was asked for what, for logs and tests. */
  attempts: FanoutAttempt[];
}

export async function fanOutSearch(input: FanoutInput): Promise<FanoutResult> {
  if (input.shards.length === 0) throw new Error("fanOutSearch needs at least one shard");
  if (input.workers.length === 0) throw new Error("fanOutSearch needs at least one worker");
  const started = Date.now();
  const { tenant, index, version } = input.request;
  const maxAttempts = Math.min(input.maxAttempts ?? 3, input.workers.length);
  const owners = new Map(input.shards.map((s) => [s, ownersFor(placementKey(tenant, index, version, s), input.workers)]));
  /** Owners already tried per shard. */
  const tried = new Map(input.shards.map((s) => [s, 0]));
  const failedWorkers = new Set<string>();
  const results: ResultFrame[] = [];
  const missing: string[] = [];
  const attempts: FanoutAttempt[] = [];
  // One scope for every upstream call: a client abort, or a worker rejecting the request outright,
  // cancels the calls still in flight instead of leaving them to run for nobody.
  const scope = new AbortController();
  const onAbort = () => scope.abort(input.signal!.reason);
  if (input.signal?.aborted) onAbort();
  else input.signal?.addEventListener("abort", onAbort, { once: true });

  /** The next untried owner of each shard, skipping workers known to be failing; shards with none are missing. */
  const regroup = (shards: readonly string[]): Map<string, string[]> => {
    const groups = new Map<string, string[]>();
    for (const shard of shards) {
      const list = owners.get(shard)!;
      let i = tried.get(shard)!;
      while (i < maxAttempts && failedWorkers.has(list[i]!)) i++;
      if (i >= maxAttempts) {
        missing.push(shard);
        continue;
      }
      tried.set(shard, i + 1);
      const worker = list[i]!;
      groups.set(worker, [...(groups.get(worker) ?? []), shard]);
    }
    return groups;
  };

  const runGroups = (groups: Map<string, string[]>): Promise<void> =>
    Promise.all(
      [...groups].map(async ([worker, shards]) => {
        const outcome = await searchOnWorker(input, scope.signal, worker, shards);
        scope.signal.throwIfAborted();
        attempts.push({ worker, shards, ok: outcome.ok, ...(outcome.ok ? {} : { reason: outcome.reason }) });
        if (!outcome.ok) {
          failedWorkers.add(worker);
          return runGroups(regroup(shards));
        }
        results.push(outcome.value);
        // Shards the worker could not search (e.g. S3 read failed there) get their next owner too.
        const unsearched = outcome.value.missingShards.filter((s) => shards.includes(s));
        if (unsearched.length > 0) return runGroups(regroup(unsearched));
      }),
    ).then(() => undefined);

  try {
    await runGroups(regroup(input.shards));
  } catch (error) {
    scope.abort(error);
    throw error;
  } finally {
    input.signal?.removeEventListener("abort", onAbort);
  }
  const hits = mergeTopK(
    results.map((r) => r.hits),
    input.request.params.k,
  );
  const stats: SearchStats = mergeStats(
    results.map((r) => r.stats),
    Date.now() - started,
  );
  const missingShards = [...new Set(missing)].sort();
  return { type: "result", hits, stats, partial: missingShards.length > 0, missingShards, attempts };
}

/**
 * Segments are placed per version; the tail (TAIL_SHARD_ID) by the index alone, on the worker that
 * writes the index's WAL (rendezvous.ts indexOwnerKey), whose WAL cache already holds it.
 */
function placementKey(tenant: string, index: string, version: number, shard: string): string {
  return shard === TAIL_SHARD_ID ? indexOwnerKey(tenant, index) : shardPlacementKey(tenant, index, version, shard);
}

/** One worker's part of the search: its shards, read as frames until the result (progress passed on as it comes). */
function searchOnWorker(input: FanoutInput, scope: AbortSignal, worker: string, shards: string[]): Promise<AttemptOutcome<ResultFrame>> {
  return attemptWorker(
    {
      fetcher: input.fetcher,
      secret: input.secret,
      worker,
      method: "POST",
      path: "/v1/search",
      tenant: input.request.tenant,
      json: { ...input.request, shards },
      // Frames, not JSON: progress arrives as it happens and the result is validated by frameSchema.
      accept: MSGPACK_FRAMES_CONTENT_TYPE,
    },
    { timeoutMs: input.timeoutMs, parent: scope, read: (response) => readResult(response, input.onProgress) },
  );
}

async function readResult(response: Response, onProgress: FanoutInput["onProgress"]): Promise<ResultFrame> {
  if (!response.body) throw new Error("empty body");
  const decoder = workerFrameDecoder();
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const frame of decoder.push(value)) {
        if (frame.type === "progress") onProgress?.(frame);
        else if (frame.type === "error") {
          // A refusal of the request (answer_too_large) would be refused by every worker: the client's error, not a failover.
          const status = REJECTION_FRAME_STATUS[frame.code];
          if (status !== undefined) throw new WorkerRejectedError(status, frame.code, frame.message);
          throw new Error(`error frame ${frame.code}`);
        }
        else if (frame.type === "result") return frame;
      }
    }
    decoder.end();
  } finally {
    reader.cancel().catch(() => {});
  }
  throw new Error("stream ended without a result");
}
