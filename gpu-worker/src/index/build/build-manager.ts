/**
 * Index jobs on one worker: builds and compactions (two kinds, one machinery). Jobs run one at a
 * time (each saturates the encoder or the graph builder and the cores), others wait in a bounded
 * queue, a tenant's index has at most one job queued or running (a build and a compaction of one
 * index never race), and finished statuses are kept for a while so clients can poll for the
 * outcome. Both kinds answer BuildStatus and are polled and cancelled alike (GET /v1/builds/:jobId,
 * POST /v1/builds/:jobId/cancel); both get the build time limit (BUILD_TIMEOUT_MS). A compaction's
 * progress: docsRead counts the tail's live documents and the merged rows read, docsTotal the rows
 * going into new segments, docsEncoded equals docsTotal once they are gathered (nothing is
 * re-encoded: the WAL holds the embeddings), then graphPercent and bytesWritten as for a build.
 */
import { randomUUID } from "node:crypto";
import type { CompactionRequest } from "../../../../shared/api/living-api.ts";
import type { BuildRequest, BuildStatus } from "../../../../shared/api/worker-api.ts";
import { IndexFormatError } from "../../../../shared/index/errors.ts";
import { tenantPrefix } from "../../../../shared/index/keys.ts";
import type { BlobStore } from "../../store/blob-store.ts";
import { CompactionInputError } from "../compaction/errors.ts";
import { runCompaction, type CompactionDeps } from "../compaction/run-compaction.ts";
import type { IndexLogger } from "../index-backend.ts";
import { BuildConflictError, BuildInputError, BuildLimitError, BuildQueueFullError, BuildsClosedError } from "./errors.ts";
import { type BuildLimits, DEFAULT_BUILD_LIMITS } from "./limits.ts";
import { runBuild, type BuildDeps, type BuildUpdate } from "./run-build.ts";

export interface BuildManagerOptions {
  runtime: BuildDeps["runtime"];
  /** Holds both the inputs (under tenants/<tenant>/) and the indexes. */
  store: BlobStore;
  /** Builds waiting behind the running one; more is a BuildQueueFullError. */
  maxQueued?: number;
  /** Finished statuses kept for polling: at most this many... */
  maxFinished?: number;
  /** ...and for at most this long. */
  finishedTtlMs?: number;
  logger?: IndexLogger;
  /** Input, time and memory limits of each build (limits.ts); the defaults where omitted. */
  limits?: Partial<BuildLimits>;
  /** Replaces runBuild (tests). */
  build?: typeof runBuild;
  /** Replaces runCompaction (tests). */
  compact?: typeof runCompaction;
  /** What a compaction needs besides the store and the model: the worker's segment opener (its ShardCache) and WAL cache, test knobs. */
  compactionDeps?: Pick<CompactionDeps, "openSegment" | "knownWal" | "shardBytes" | "mergePolicy">;
  /** Runs around each compaction (IndexRegistry.acquire of its base version); none when omitted. */
  aroundCompaction?: <T>(request: CompactionRequest, run: () => Promise<T>) => Promise<T>;
}

/** The two kinds of job, each with its request. */
type JobWork = { kind: "build"; request: BuildRequest } | { kind: "compaction"; request: CompactionRequest };

interface Job {
  status: BuildStatus;
  work: JobWork;
  /** The work's tenant and index (both kinds have them). */
  request: { tenant: string; index: string; version: number };
  abort: AbortController;
  /** Set by cancel(): the abort that follows is a cancel, not a shutdown. */
  cancelled?: boolean;
  finishedAtMs?: number;
}

const silent: IndexLogger = { info() {}, warn() {}, error() {} };

export class BuildManager {
  private readonly jobs = new Map<string, Job>();
  private readonly queue: Job[] = [];
  private running: Job | undefined;
  /** Settles when the running job has finished (its status final). */
  private runningDone: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly maxQueued: number;
  private readonly maxFinished: number;
  private readonly finishedTtlMs: number;
  private readonly logger: IndexLogger;
  private readonly build: typeof runBuild;
  private readonly compact: typeof runCompaction;

  constructor(private readonly options: BuildManagerOptions) {
    this.maxQueued = options.maxQueued ?? 16;
    this.maxFinished = options.maxFinished ?? 1000;
    this.finishedTtlMs = options.finishedTtlMs ?? 24 * 3600_000;
    this.logger = options.logger ?? silent;
    this.build = options.build ?? runBuild;
    this.compact = options.compact ?? runCompaction;
  }

  /**
   * Queues a build and returns its status (state "queued"). Throws BuildConflictError if the same
   * tenant/index already has a build queued or running, BuildQueueFullError if too many wait,
   * BuildsClosedError once closed.
   */
  start(request: BuildRequest): BuildStatus {
    return this.enqueue({ kind: "build", request });
  }

  /**
   * Queues a compaction (runCompaction) like a build: the same queue, conflicts, status, cancel and
   * time limit. Its status's `version` is the version it writes.
   */
  startCompaction(request: CompactionRequest): BuildStatus {
    return this.enqueue({ kind: "compaction", request });
  }

  private enqueue(work: JobWork): BuildStatus {
    const { request } = work;
    if (this.closed) throw new BuildsClosedError();
    const busy = [...this.queue, ...(this.running ? [this.running] : [])].find(
      (j) => j.request.tenant === request.tenant && j.request.index === request.index,
    );
    if (busy) {
      throw new BuildConflictError(`index ${request.index} already has a ${busy.work.kind} ${busy.status.state} (version ${busy.request.version}, job ${busy.status.jobId})`);
    }
    if (this.queue.length >= this.maxQueued) throw new BuildQueueFullError(this.queue.length);
    this.prune();
    const job: Job = {
      work,
      request,
      abort: new AbortController(),
      status: queuedStatus(request, randomUUID()),
    };
    this.jobs.set(job.status.jobId, job);
    this.queue.push(job);
    queueMicrotask(() => this.pump());
    return snapshot(job.status);
  }

  /** The job's status, or undefined if unknown, expired or another tenant's (never reveals which). */
  get(tenant: string, jobId: string): BuildStatus | undefined {
    this.prune();
    const job = this.jobs.get(jobId);
    return job && job.status.tenant === tenant ? snapshot(job.status) : undefined;
  }

  /**
   * Cancels a tenant's job (the edge's POST /v1/indexes/:id/builds/:b/cancel): a queued job leaves the
   * queue, a running one is aborted and ends `failed` with code `cancelled` once its build stops; a
   * finished job is left as it is. Returns the status as it is now, or undefined like `get`.
   */
  cancel(tenant: string, jobId: string): BuildStatus | undefined {
    const job = this.jobs.get(jobId);
    if (!job || job.status.tenant !== tenant) return undefined;
    const cancelled = cancelledFailure(job);
    const queued = this.queue.indexOf(job);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      this.finish(job, cancelled);
    } else if (job === this.running) {
      job.cancelled = true;
      job.abort.abort(new DOMException(cancelled.message, "AbortError"));
    }
    return snapshot(job.status);
  }

  /** Queued and running builds, running first. */
  active(): BuildStatus[] {
    return [...(this.running ? [this.running] : []), ...this.queue].map((j) => snapshot(j.status));
  }

  /** Stops taking builds, fails the queued ones and aborts the running one (shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) this.finish(job, { code: "aborted", message: "the worker shut down before the build started" });
    this.running?.abort.abort(new DOMException("the worker is shutting down", "AbortError"));
    await this.runningDone;
  }

  private pump(): void {
    if (this.running || this.queue.length === 0) return;
    const job = this.queue.shift()!;
    this.running = job;
    this.runningDone = this.execute(job).finally(() => {
      this.running = undefined;
      this.pump();
    });
  }

  private async execute(job: Job): Promise<void> {
    if (job.work.kind === "compaction") return this.executeCompaction(job, job.work.request);
    const request = job.work.request;
    const log = { jobId: job.status.jobId, tenant: request.tenant, index: request.index, version: request.version };
    const started = performance.now();
    this.logger.info(log, "index build started");
    try {
      const manifest = await this.build(request, {
        runtime: this.options.runtime,
        store: this.options.store,
        inputKeyPrefix: tenantPrefix(request.tenant),
        signal: job.abort.signal,
        onProgress: (update) => applyUpdate(job.status, update),
        onWarning: (message) => this.logger.warn(log, message),
        limits: this.options.limits,
      });
      job.status.state = "succeeded";
      job.status.finishedAt = new Date().toISOString();
      job.finishedAtMs = Date.now();
      this.logger.info(
        { ...log, docs: manifest.docCount, shards: manifest.shards.length, reachableFraction: manifest.graph.reachableFraction, ms: Math.round(performance.now() - started) },
        "index build succeeded",
      );
    } catch (error) {
      const failure = job.cancelled ? cancelledFailure(job) : describeFailure(error);
      if (failure.code === "internal") this.logger.error({ ...log, err: error }, "index build failed");
      // The log gets the code and the position (the error's message); the tenant's message may quote the input.
      else this.logger.warn({ ...log, code: failure.code, reason: (error as Error).message }, "index build failed");
      this.finish(job, failure);
    }
  }

  private async executeCompaction(job: Job, request: CompactionRequest): Promise<void> {
    const log = { jobId: job.status.jobId, tenant: request.tenant, index: request.index, version: request.version, baseVersion: request.baseVersion, toSeq: request.toSeq };
    const started = performance.now();
    this.logger.info(log, "index compaction started");
    const around = this.options.aroundCompaction ?? (<T>(_r: CompactionRequest, run: () => Promise<T>) => run());
    try {
      const { manifest, stats } = await around(request, () =>
        this.compact(request, {
          store: this.options.store,
          model: { modelId: this.options.runtime.manifest.modelId, embeddingDim: this.options.runtime.manifest.embeddingDim },
          ...this.options.compactionDeps,
          signal: job.abort.signal,
          onProgress: (update) => applyUpdate(job.status, update),
          onWarning: (message) => this.logger.warn(log, message),
          timeoutMs: this.options.limits?.timeoutMs ?? DEFAULT_BUILD_LIMITS.timeoutMs,
        }),
      );
      job.status.state = "succeeded";
      job.status.finishedAt = new Date().toISOString();
      job.finishedAtMs = Date.now();
      this.logger.info({ ...log, docs: manifest.docCount, segments: manifest.shards.length, ...stats, ms: Math.round(performance.now() - started) }, "index compaction succeeded");
    } catch (error) {
      const failure = job.cancelled ? cancelledFailure(job) : describeCompactionFailure(error);
      if (failure.code === "internal") this.logger.error({ ...log, err: error }, "index compaction failed");
      else this.logger.warn({ ...log, code: failure.code, reason: (error as Error).message }, "index compaction failed");
      this.finish(job, failure);
    }
  }

  private finish(job: Job, error: { code: string; message: string }): void {
    job.status.state = "failed";
    job.status.error = error;
    job.status.finishedAt = new Date().toISOString();
    job.finishedAtMs = Date.now();
  }

  /** Drops finished statuses past the TTL, then the oldest beyond maxFinished. */
  private prune(): void {
    const now = Date.now();
    const finished = [...this.jobs.values()].filter((j) => j.finishedAtMs !== undefined);
    const excess = finished.length - this.maxFinished;
    finished.forEach((job, i) => {
      // Map order is insertion order; finish order differs only slightly, and both bound memory.
      if (i < excess || now - job.finishedAtMs! > this.finishedTtlMs) this.jobs.delete(job.status.jobId);
    });
  }
}

/** What a tenant may see about a failure: input (with its quoted detail), limit and conflict messages, the rest generic. */
export function describeFailure(error: unknown): { code: string; message: string } {
  if (error instanceof BuildInputError) return { code: "invalid_input", message: error.tenantMessage };
  if (error instanceof BuildLimitError) return { code: error.code, message: error.message };
  if (error instanceof BuildConflictError) return { code: "build_conflict", message: error.message };

  if ((error as { name?: string } | undefined)?.name === "AbortError") return { code: "aborted", message: "the build was cancelled" };
  return { code: "internal", message: "internal error while building the index" };
}

/**
 * A compaction's failure: what the store holds is missing, corrupt or from another model, or one
 * of a build's failures (conflict, timeout). The corrupt object's key stays in the worker log.
 */
export function describeCompactionFailure(error: unknown): { code: string; message: string } {
  if (error instanceof CompactionInputError) return { code: error.code, message: error.message };
  if (error instanceof IndexFormatError) return { code: "corrupt_index", message: "a stored object of the index (manifest, segment, deletion bitmap or WAL batch) is corrupt; details in the worker log" };
  const failure = describeFailure(error);
  return failure.code === "internal" ? { code: "internal", message: "internal error while compacting the index" } : failure;
}

function applyUpdate(status: BuildStatus, update: BuildUpdate): void {
  if (update.state) status.state = update.state;
  if (update.progress) Object.assign(status.progress, update.progress);
}

function cancelledFailure(job: Job): { code: string; message: string } {
  return { code: "cancelled", message: `the ${job.work.kind} was cancelled` };
}

function snapshot(status: BuildStatus): BuildStatus {
  return structuredClone(status);
}

/** The status of a build (or compaction) that has just been accepted. */
export function queuedStatus(request: Pick<BuildRequest, "tenant" | "index" | "version">, jobId: string): BuildStatus {
  return {
    jobId,
    tenant: request.tenant,
    index: request.index,
    version: request.version,
    state: "queued",
    progress: { docsRead: 0, docsEncoded: 0, docsTotal: 0, graphPercent: 0, bytesWritten: 0 },
    startedAt: new Date().toISOString(),
  };
}
