/**
 * A living index's background maintenance, run by its IndexWriter Durable Object (index-writer.ts)
 * from alarm(): compaction of the WAL tail into a new version, garbage collection, and the cleanup
 * of a deleted index. Everything it must remember between alarms lives in the object's storage
 * under `maint:*`; everything shared with the rest of the edge lives in D1 (db/living.ts).
 *
 * Compaction, one job at a time, as a state machine across alarms:
 *   idle        the tail (active covered_seq, head_seq] is big enough (COMPACT_TAIL_DOCS upserts,
 *               COMPACT_TAIL_BATCHES batches) or old enough (COMPACT_TAIL_AGE_SECONDS), and no user
 *               build is in progress: reserve version V in D1 (kind 'compaction', covered_seq = head),
 *               record the job (`maint:job`), POST /v1/compactions to the index's rendezvous owner
 *               (failing over to the next owners).
 *   running     poll GET /v1/builds/:jobId on that worker every POLL_INTERVAL_MS.
 *   succeeded   read V's manifest from S3; one D1 batch makes V ready and active only if its base is
 *               still active (a build that flipped meanwhile wins: V is discarded), and marks the
 *               replaced version superseded; then the writer's pending counters are recounted.
 *   failed      (the worker failed, forgot the job, stayed silent past BUILD_SILENCE_SECONDS, or
 *               nobody accepted it): V is failed, and the next attempt waits an exponential backoff.
 * Crash safety: V is reserved before the job is recorded and the job before the dispatch, so a
 * crash leaves either a 'building' compaction version that is not the recorded job (failed on the
 * next run) or a job without a worker job id (failed on the next run); neither is ever flipped.
 *
 * Pending counters stay right after any flip, a build's included: every run compares the active
 * version's covered_seq with the one it last recounted for (`maint:coveredSeq`) and calls
 * resetPending when it moved.
 *
 * Garbage collection: every GC_INTERVAL_SECONDS (and so at most that long after a superseded
 * version's GC_GRACE_SECONDS ran out) a sweep (POST /v1/sweep) of what sweep-plan.ts computes, plus
 * the index's uploads expired for longer than GC_GRACE_SECONDS that no build in progress reads.
 * Only when there is something to delete does it call a worker.
 *
 * Deleting an index (destroyIndex, after the D1 soft delete): cancel the build and compaction in
 * progress, sweep `everything` (the whole index prefix and all its uploads) now and again
 * DESTROY_RESWEEP_MS later (a build or WAL write in flight at the delete may still have put
 * objects), retrying every DESTROY_RETRY_MS while no worker answers, then indexes.purged_at. With a
 * worker reachable that is done within 60 s of the delete (30 s plus two sweeps).
 */
import { z } from "zod";
import type { FieldSchema } from "../../../shared/filter/schema.ts";
import { type CompactionRequest, compactionRequestSchema, type SweepAnswer, type SweepRequest } from "../../../shared/api/living-api.ts";
import { BUILD_STATES, type BuildStatus } from "../../../shared/api/worker-api.ts";
import { MANIFEST_READ_BACKOFF_MS, readVersionManifest } from "../builds/version-manifest.ts";
import { buildSilenceLimitSeconds, cancelWorkerJob, pollWorkerJob } from "../builds/worker-jobs.ts";
import { endBuild, getBuildInProgress } from "../db/builds.ts";
import {
  completeCompaction,
  expiredUploads,
  failCompactionVersion,
  loadMaintenanceView,
  markIndexPurged,
  markSupersededStatement,
  markVersionsSwept,
  type MaintenanceView,
  reserveVersion,
  uploadIdsOfIndex,
} from "../db/living.ts";
import { nowIso } from "../db/sql.ts";
import type { EdgeBindings } from "../env.ts";
import { WorkerRejectedError } from "../errors.ts";
import { tryOwners } from "../routing/owner-call.ts";
import { defaultFetcher, type Fetcher } from "../routing/worker-client.ts";
import { type WorkerPoolConfig, workerPoolFromEnv } from "../routing/worker-pool.ts";
import { s3For } from "../uploads/routes.ts";
import { type MaintenanceSettings, maintenanceSettings } from "./maintenance-settings.ts";
import { planSweep } from "./sweep-plan.ts";
import { indexOwnerKey } from "../routing/rendezvous.ts";
import { pendingBatches, pendingDocs, resetPending, tailSince } from "./writer-state.ts";

export interface MaintenanceContext {
  env: EdgeBindings;
  storage: DurableObjectStorage;
  tenant: string;
  index: string;
  fetcher?: Fetcher;
  now?: () => number;
}

/** A running compaction is polled this often. */
export const POLL_INTERVAL_MS = 2_000;
/** While a user build runs, compaction waits; it looks again this often. */
export const BUILD_WAIT_MS = 30_000;
/** The first retry after a failed compaction; doubled per consecutive failure up to RETRY_MAX_MS. */
export const RETRY_BASE_MS = 10_000;
export const RETRY_MAX_MS = 600_000;
/** Owners tried per dispatch or sweep. */
const OWNER_ATTEMPTS = 3;
/** A sweep with no answer is retried after at most this long. */
export const SWEEP_RETRY_MS = 60_000;
/** destroyIndex: the second sweep of everything follows the first by this much. */
export const DESTROY_RESWEEP_MS = 30_000;
/** destroyIndex: while no worker answers, it tries again this often. */
export const DESTROY_RETRY_MS = 5_000;
/** After an unexpected error (D1 or S3 unavailable, a bad setting), maintenance runs again this much later. */
export const ERROR_RETRY_MS = 60_000;
/** One sweep request names at most this many uploads (sweepRequestSchema). */
const SWEEP_UPLOADS_MAX = 1_000;

/** Durable Object storage keys of this module (the writer's are `writer:*`). */
export const MAINT_KEYS = {
  job: "maint:job",
  failures: "maint:failures",
  retryAt: "maint:retryAt",
  coveredSeq: "maint:coveredSeq",
  tailSeenAt: "maint:tailSeenAt",
  lastGcAt: "maint:lastGcAt",
  walSweptTo: "maint:walSweptTo",
  uploadsSweptThrough: "maint:uploadsSweptThrough",
  destroy: "maint:destroy",
} as const;
const MAINT_PREFIX = "maint:";

export interface CompactionJob {
  version: number;
  baseVersion: number;
  toSeq: number;
  reservedAt: number;
  /** Set once a worker accepted it. */
  worker?: string;
  jobId?: string;
  /** The last time its worker answered (or the dispatch). */
  lastHeardAt: number;
}

interface DestroyState {
  phase: "cancel" | "first" | "second";
  /** When the second sweep is due (phase "second"). */
  secondAt?: number;
}


/** Worker answers are external input: only what is used is checked. */
const jobAnswerSchema = z.object({ jobId: z.string().min(1).max(200), state: z.enum(BUILD_STATES) }).passthrough();
const sweepAnswerSchema = z.object({ deletedObjects: z.number().int().nonnegative(), keptObjects: z.number().int().nonnegative(), ms: z.number().nonnegative() });

function log(ctx: MaintenanceContext, msg: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ msg, tenant: ctx.tenant, index: ctx.index, ...fields }));
}

function poolOrNull(ctx: MaintenanceContext): WorkerPoolConfig | null {
  try {
    return workerPoolFromEnv(ctx.env);
  } catch {
    // workerPoolFromEnv logged why; maintenance tries again later.
    return null;
  }
}

const earliest = (...times: Array<number | null>): number | null => {
  const set = times.filter((t): t is number => t !== null);
  return set.length === 0 ? null : Math.min(...set);
};

/**
 * One run at a time per index: a call while another is in flight (an alarm and an explicit call
 * interleaving at a network wait, or a destroy landing mid-compaction-dispatch) waits for it, so no
 * run sees a version another has reserved but not yet recorded as its job.
 */
const tails = new Map<string, Promise<unknown>>();
function serialized(ctx: MaintenanceContext, retryMs: number, work: () => Promise<number | null>): Promise<number | null> {
  const key = `${ctx.tenant}/${ctx.index}`;
  // An error (D1 or S3 down, a bad setting) must not end the alarm chain: logged, and tried again later.
  const run = () =>
    work().catch((error: unknown) => {
      console.error(JSON.stringify({ msg: "index maintenance failed; retrying", tenant: ctx.tenant, index: ctx.index, error: (error as Error)?.message?.slice(0, 300) }));
      return (ctx.now ?? Date.now)() + retryMs;
    });
  const result = (tails.get(key) ?? Promise.resolve()).then(run, run);
  const tail = result.catch(() => {});
  tails.set(key, tail);
  void tail.then(() => {
    if (tails.get(key) === tail) tails.delete(key);
  });
  return result;
}

/** Compaction check/dispatch/poll/flip and GC; returns when the next alarm should fire (ms epoch) or null. */
export function runMaintenance(ctx: MaintenanceContext): Promise<number | null> {
  return serialized(ctx, ERROR_RETRY_MS, () => maintain(ctx));
}

async function maintain(ctx: MaintenanceContext): Promise<number | null> {
  const now = (ctx.now ?? Date.now)();
  const settings = maintenanceSettings(ctx.env);
  const view = await loadMaintenanceView(ctx.env.DB, ctx.tenant, ctx.index);
  // A deleted index is destroyIndex's business; a missing one has nothing to maintain.
  if (!view.index || view.index.status === "deleted") return null;
  const pool = poolOrNull(ctx);
  if (!pool) return now + settings.gcIntervalMs;

  await syncPending(ctx, view);
  const job = (await ctx.storage.get<CompactionJob>(MAINT_KEYS.job)) ?? null;
  await failAbandonedCompactions(ctx, view, job);
  const compactionNext = job ? await advanceCompaction(ctx, pool, job, now) : await maybeCompact(ctx, pool, settings, view, now);
  const gcNext = await maybeCollectGarbage(ctx, pool, settings, now);
  return earliest(compactionNext, gcNext);
}

/** The active version's covered_seq as of `view` (0 when never built). */
function activeCoveredSeq(view: MaintenanceView): number {
  return view.versions.find((v) => v.version === view.index?.activeVersion && v.state === "ready")?.coveredSeq ?? 0;
}

/** Recounts the writer's pending counters whenever the active version's covered_seq moved (a build or compaction flipped). */
async function syncPending(ctx: MaintenanceContext, view: MaintenanceView): Promise<void> {
  const covered = activeCoveredSeq(view);
  if ((await ctx.storage.get<number>(MAINT_KEYS.coveredSeq)) === covered) return;
  await resetPending(ctx.storage, covered);
  await ctx.storage.put(MAINT_KEYS.coveredSeq, covered);
}

/** A 'building' compaction version that is not the recorded job was reserved by a run that crashed before recording it. */
async function failAbandonedCompactions(ctx: MaintenanceContext, view: MaintenanceView, job: CompactionJob | null): Promise<void> {
  for (const v of view.versions) {
    if (v.kind === "compaction" && v.state === "building" && v.version !== job?.version) {
      log(ctx, "compaction abandoned by a crash; its version is failed", { version: v.version });
      await failCompactionVersion(ctx.env.DB, ctx.tenant, ctx.index, v.version);
    }
  }
}

async function maybeCompact(ctx: MaintenanceContext, pool: WorkerPoolConfig, settings: MaintenanceSettings, view: MaintenanceView, now: number): Promise<number | null> {
  const covered = activeCoveredSeq(view);
  const head = view.index!.headSeq;
  if (head <= covered) {
    await ctx.storage.delete(MAINT_KEYS.tailSeenAt);
    return null;
  }
  const [docs, batches, since] = await Promise.all([pendingDocs(ctx.storage), pendingBatches(ctx.storage), tailSince(ctx.storage)]);
  // D1 says there is a tail even if the writer's ledger does not (lost, or a build rewound covered_seq): age it from when it was first seen.
  let seen = await ctx.storage.get<number>(MAINT_KEYS.tailSeenAt);
  if (seen === undefined) {
    seen = now;
    await ctx.storage.put(MAINT_KEYS.tailSeenAt, seen);
  }
  const oldest = Math.min(since ?? seen, seen);
  const due = docs >= settings.compactTailDocs || batches >= settings.compactTailBatches || now - oldest >= settings.compactTailAgeMs;
  if (!due) return oldest + settings.compactTailAgeMs;
  // A user build replaces the contents anyway; compacting under it would only be discarded.
  if (view.buildInProgress) return now + BUILD_WAIT_MS;
  const retryAt = (await ctx.storage.get<number>(MAINT_KEYS.retryAt)) ?? 0;
  if (now < retryAt) return retryAt;
  return dispatchCompaction(ctx, pool, view.index!.activeVersion ?? 0, covered, now, view.index!.fields);
}

async function dispatchCompaction(
  ctx: MaintenanceContext,
  pool: WorkerPoolConfig,
  baseVersion: number,
  baseCovered: number,
  now: number,
  fields: FieldSchema,
): Promise<number | null> {
  const db = ctx.env.DB;
  const reserved = await reserveVersion(db, ctx.tenant, ctx.index, "compaction");
  if (!reserved) return null;
  if (reserved.coveredSeq <= baseCovered) {
    await failCompactionVersion(db, ctx.tenant, ctx.index, reserved.version);
    return null;
  }
  const job: CompactionJob = { version: reserved.version, baseVersion, toSeq: reserved.coveredSeq, reservedAt: now, lastHeardAt: now };
  await ctx.storage.put(MAINT_KEYS.job, job);
  const request: CompactionRequest = compactionRequestSchema.parse({
    tenant: ctx.tenant,
    index: ctx.index,
    baseVersion,
    version: job.version,
    toSeq: job.toSeq,
    // New and merged segments get filter columns for the index's declared fields.
    ...(Object.keys(fields).length > 0 ? { filterFields: fields } : {}),
  });
  let accepted;
  try {
    accepted = await tryOwners({
      key: indexOwnerKey(ctx.tenant, ctx.index),
      pool,
      fetcher: ctx.fetcher ?? defaultFetcher,
      path: "/v1/compactions",
      tenant: ctx.tenant,
      json: request,
      accept: "application/json",
      maxAttempts: OWNER_ATTEMPTS,
      read: async (response) => jobAnswerSchema.parse(await response.json()),
    });
  } catch (error) {
    if (!(error instanceof WorkerRejectedError)) throw error;
    return failCompaction(ctx, job, now, `the worker refused the compaction: ${error.code}`);
  }
  if (!accepted) return failCompaction(ctx, job, now, "no worker accepted the compaction");
  await ctx.storage.put(MAINT_KEYS.job, { ...job, worker: accepted.worker, jobId: accepted.value.jobId, lastHeardAt: now } satisfies CompactionJob);
  log(ctx, "compaction dispatched", { version: job.version, baseVersion, toSeq: job.toSeq, worker: accepted.worker });
  return now + POLL_INTERVAL_MS;
}

async function advanceCompaction(ctx: MaintenanceContext, pool: WorkerPoolConfig, job: CompactionJob, now: number): Promise<number | null> {
  // A job without a worker job id: the run that dispatched it died before recording the answer.
  if (!job.worker || !job.jobId) return failCompaction(ctx, job, now, "the compaction's dispatch was never recorded");
  const polled = await pollWorkerJob(ctx.fetcher ?? defaultFetcher, pool, { worker: job.worker, jobId: job.jobId, tenant: ctx.tenant });
  if (polled.kind === "unreachable") {
    if (now - job.lastHeardAt > buildSilenceLimitSeconds(ctx.env) * 1000) return failCompaction(ctx, job, now, "the compaction's worker stopped answering");
    return now + POLL_INTERVAL_MS;
  }
  if (polled.kind === "lost") return failCompaction(ctx, job, now, "the compaction's worker restarted");
  const status: BuildStatus = polled.status;
  if (status.tenant !== ctx.tenant || status.index !== ctx.index || status.version !== job.version) return failCompaction(ctx, job, now, "the worker answered for another job");
  if (status.state === "failed") return failCompaction(ctx, job, now, `the compaction failed: ${status.error?.code ?? "compaction_failed"}`);
  if (status.state !== "succeeded") {
    await ctx.storage.put(MAINT_KEYS.job, { ...job, lastHeardAt: now } satisfies CompactionJob);
    return now + POLL_INTERVAL_MS;
  }
  const built = await readVersionManifest(s3For(ctx.env), { tenantId: ctx.tenant, indexId: ctx.index, version: job.version }, MANIFEST_READ_BACKOFF_MS, "compaction");
  // S3 did not answer definitely: the work is done, so read again on the next poll.
  if (built.kind === "unavailable") return now + POLL_INTERVAL_MS;
  if (built.kind === "invalid") return failCompaction(ctx, job, now, built.message);
  // A version that claims other WAL seqs than it was asked to fold would hide or repeat writes.
  if (built.version.coveredSeq !== job.toSeq) return failCompaction(ctx, job, now, `the compaction's manifest covers seq ${built.version.coveredSeq}, not ${job.toSeq}`);
  const outcome = await completeCompaction(ctx.env.DB, ctx.tenant, ctx.index, job, built.version);
  await ctx.storage.delete([MAINT_KEYS.job, MAINT_KEYS.failures, MAINT_KEYS.retryAt]);
  if (outcome === "flipped") {
    const covered = built.version.coveredSeq ?? 0;
    await resetPending(ctx.storage, covered);
    // What is left of the tail ages from its own batches (the ledger), or from the next run's first look.
    await ctx.storage.put(MAINT_KEYS.coveredSeq, covered);
    await ctx.storage.delete(MAINT_KEYS.tailSeenAt);
  }
  log(ctx, outcome === "flipped" ? "compaction published" : "compaction discarded: its base is no longer the active version", {
    version: job.version,
    baseVersion: job.baseVersion,
    coveredSeq: built.version.coveredSeq,
    docCount: built.version.docCount,
    segments: built.version.shards.length,
  });
  // Look again soon: the tail may already be due again, and the sweeper has a new superseded version to wait for.
  return now + POLL_INTERVAL_MS;
}

/** Backoff before compaction attempt n+1 after n consecutive failures. */
export function retryDelayMs(failures: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, failures - 1));
}

async function failCompaction(ctx: MaintenanceContext, job: CompactionJob, now: number, reason: string): Promise<number> {
  await failCompactionVersion(ctx.env.DB, ctx.tenant, ctx.index, job.version);
  const failures = ((await ctx.storage.get<number>(MAINT_KEYS.failures)) ?? 0) + 1;
  const retryAt = now + retryDelayMs(failures);
  await ctx.storage.put({ [MAINT_KEYS.failures]: failures, [MAINT_KEYS.retryAt]: retryAt });
  await ctx.storage.delete(MAINT_KEYS.job);
  log(ctx, "compaction failed; retrying later", { version: job.version, reason, failures, retryInMs: retryAt - now });
  return retryAt;
}

async function sweep(ctx: MaintenanceContext, pool: WorkerPoolConfig, request: SweepRequest): Promise<SweepAnswer | null> {
  try {
    const answered = await tryOwners({
      key: indexOwnerKey(ctx.tenant, ctx.index),
      pool,
      fetcher: ctx.fetcher ?? defaultFetcher,
      path: "/v1/sweep",
      tenant: ctx.tenant,
      json: request,
      accept: "application/json",
      maxAttempts: OWNER_ATTEMPTS,
      read: async (response) => sweepAnswerSchema.parse(await response.json()),
    });
    return answered?.value ?? null;
  } catch (error) {
    if (!(error instanceof WorkerRejectedError)) throw error;
    // A refusal is a bug on one side or the other, not a reason to stop maintaining the index: logged, retried later.
    log(ctx, "the worker refused a sweep", { code: error.code, status: error.status });
    return null;
  }
}

async function maybeCollectGarbage(ctx: MaintenanceContext, pool: WorkerPoolConfig, settings: MaintenanceSettings, now: number): Promise<number | null> {
  const lastGcAt = await ctx.storage.get<number>(MAINT_KEYS.lastGcAt);
  if (lastGcAt !== undefined && now < lastGcAt + settings.gcIntervalMs) return lastGcAt + settings.gcIntervalMs;
  const db = ctx.env.DB;
  // Rows from before superseded_at existed (or a flip that left one unmarked) start their grace now.
  await markSupersededStatement(db, ctx.tenant, ctx.index, nowIso()).run();
  const view = await loadMaintenanceView(db, ctx.tenant, ctx.index);
  if (!view.index || view.index.status === "deleted") return null;
  const plan = planSweep(view.versions, view.index.activeVersion, now, settings.gcGraceMs);
  const walSweptTo = (await ctx.storage.get<number>(MAINT_KEYS.walSweptTo)) ?? 0;
  const uploadsThrough = (await ctx.storage.get<string>(MAINT_KEYS.uploadsSweptThrough)) ?? "";
  const candidates = await expiredUploads(db, ctx.tenant, ctx.index, uploadsThrough, new Date(now - settings.gcGraceMs).toISOString(), SWEEP_UPLOADS_MAX);
  const uploads = candidates.filter((u) => !u.inUse).map((u) => u.id);
  const nextThrough = uploadsCursor(candidates, uploadsThrough, SWEEP_UPLOADS_MAX);

  const needed = plan.collect.length > 0 || plan.walUpToSeq > walSweptTo || uploads.length > 0;
  if (needed) {
    // versionsUpTo: a version reserved after this view was read is never the sweep's to delete.
    const versionsUpTo = view.versions.reduce((max, v) => Math.max(max, v.version), view.index.activeVersion ?? 0);
    const answer = await sweep(ctx, pool, { tenant: ctx.tenant, index: ctx.index, everything: false, keepVersions: plan.keepVersions, walUpToSeq: plan.walUpToSeq, uploads, versionsUpTo });
    if (!answer) return now + Math.min(SWEEP_RETRY_MS, settings.gcIntervalMs);
    await markVersionsSwept(db, ctx.tenant, ctx.index, plan.collect);
    await ctx.storage.put({ [MAINT_KEYS.walSweptTo]: Math.max(walSweptTo, plan.walUpToSeq), [MAINT_KEYS.uploadsSweptThrough]: nextThrough });
    log(ctx, "swept", { versions: plan.collect, walUpToSeq: plan.walUpToSeq, uploads: uploads.length, deletedObjects: answer.deletedObjects, keptObjects: answer.keptObjects, ms: answer.ms });
  }
  await ctx.storage.put(MAINT_KEYS.lastGcAt, now);
  return now + settings.gcIntervalMs;
}

/**
 * How far the expired-upload cursor may move after sweeping `candidates` (oldest first): over every
 * expiry time before the first upload a build in progress still reads (it is looked at again next
 * time, with every upload that shares its expiry time), and never into the last expiry time of a
 * full page (more uploads may share it).
 */
export function uploadsCursor(candidates: ReadonlyArray<{ expiresAt: string; inUse: boolean }>, current: string, pageSize: number): string {
  const blockers = candidates.filter((u) => u.inUse).map((u) => u.expiresAt);
  if (candidates.length >= pageSize) blockers.push(candidates[candidates.length - 1]!.expiresAt);
  const blockedAt = blockers.length > 0 ? blockers.reduce((a, b) => (a < b ? a : b)) : null;
  let cursor = current;
  for (const u of candidates) {
    if (blockedAt !== null && u.expiresAt >= blockedAt) break;
    cursor = u.expiresAt;
  }
  return cursor;
}

/** After the soft delete: cancel builds, sweep everything (twice), purge. Returns next alarm or null when done. */
export function destroyIndex(ctx: MaintenanceContext): Promise<number | null> {
  return serialized(ctx, DESTROY_RETRY_MS, () => destroy(ctx));
}

async function destroy(ctx: MaintenanceContext): Promise<number | null> {
  const now = (ctx.now ?? Date.now)();
  const db = ctx.env.DB;
  const view = await loadMaintenanceView(db, ctx.tenant, ctx.index);
  // Never sweep everything of an index that is not deleted (a bug upstream must not wipe a live index).
  if (!view.index || view.index.status !== "deleted") {
    log(ctx, "destroyIndex called for an index that is not deleted; nothing done", { status: view.index?.status ?? "missing" });
    return null;
  }
  const pool = poolOrNull(ctx);
  if (!pool) return now + DESTROY_RETRY_MS;
  const fetcher = ctx.fetcher ?? defaultFetcher;
  let state = (await ctx.storage.get<DestroyState>(MAINT_KEYS.destroy)) ?? { phase: "cancel" };

  if (state.phase === "cancel") {
    // Best effort: a job that cannot be reached to cancel is what the second sweep is for.
    const build = await getBuildInProgress(db, ctx.tenant, ctx.index);
    if (build) {
      if (build.workerUrl && build.workerJobId) await cancelWorkerJob(fetcher, pool, { worker: build.workerUrl, jobId: build.workerJobId, tenant: ctx.tenant });
      await endBuild(db, build, "cancelled", { code: "index_deleted", message: "the index was deleted" });
    }
    const job = await ctx.storage.get<CompactionJob>(MAINT_KEYS.job);
    if (job?.worker && job.jobId) await cancelWorkerJob(fetcher, pool, { worker: job.worker, jobId: job.jobId, tenant: ctx.tenant });
    if (job) await failCompactionVersion(db, ctx.tenant, ctx.index, job.version);
    await ctx.storage.delete(MAINT_KEYS.job);
    state = { phase: "first" };
    await ctx.storage.put(MAINT_KEYS.destroy, state);
  }
  if (state.phase === "second" && now < state.secondAt!) return state.secondAt!;

  if (!(await sweepEverything(ctx, pool))) return now + DESTROY_RETRY_MS;
  if (state.phase === "first") {
    const secondAt = now + DESTROY_RESWEEP_MS;
    await ctx.storage.put(MAINT_KEYS.destroy, { phase: "second", secondAt } satisfies DestroyState);
    log(ctx, "deleted index swept; sweeping again for stragglers", { inMs: DESTROY_RESWEEP_MS });
    return secondAt;
  }
  await markIndexPurged(db, ctx.tenant, ctx.index);
  const keys = [...(await ctx.storage.list({ prefix: MAINT_PREFIX })).keys()];
  for (let i = 0; i < keys.length; i += 128) await ctx.storage.delete(keys.slice(i, i + 128));
  log(ctx, "deleted index purged");
  return null;
}

/** Sweeps `everything` with every upload id of the index, SWEEP_UPLOADS_MAX per call; false unless every call was answered. */
async function sweepEverything(ctx: MaintenanceContext, pool: WorkerPoolConfig): Promise<boolean> {
  const uploads = await uploadIdsOfIndex(ctx.env.DB, ctx.tenant, ctx.index);
  let deletedObjects = 0;
  for (let i = 0; i === 0 || i < uploads.length; i += SWEEP_UPLOADS_MAX) {
    const answer = await sweep(ctx, pool, { tenant: ctx.tenant, index: ctx.index, everything: true, keepVersions: [], walUpToSeq: 0, uploads: uploads.slice(i, i + SWEEP_UPLOADS_MAX) });
    if (!answer) return false;
    deletedObjects += answer.deletedObjects;
  }
  log(ctx, "swept everything of a deleted index", { uploads: uploads.length, deletedObjects });
  return true;
}
