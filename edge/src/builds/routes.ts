/**
 * Index builds (mounted under /v1/indexes):
 *
 *   POST /:id/builds            (scope manage)   check the upload (HEAD), reserve the next version
 *                                                (recording the index's head seq as its coveredSeq),
 *                                                record the build, dispatch it to a GPU worker: 202
 *   GET  /:id/builds/:buildId   (search|manage)  poll the worker, record progress; on success read the
 *                                                version's manifest and flip the active version
 *   POST /:id/builds/:buildId/cancel (manage)    stop the worker's job and end the build `cancelled`
 *
 * A second build of an index while one runs is 409 (the D1 partial unique index decides, not a
 * check-then-insert); a tenant holds at most MAX_BUILDS_PER_TENANT builds in progress (429).
 * A failed build marks its version failed and leaves the active one serving.
 *
 * Living indexes: a build replaces the contents as of the seq at which it started. The reservation
 * records indexes.head_seq as the version's covered_seq and the worker writes it into the manifest
 * as coveredSeq, so writes acknowledged after the dispatch stay visible (as the new version's WAL
 * tail) once it publishes. The success records the manifest's coveredSeq and marks the replaced
 * version superseded (the sweeper's grace runs from then); the IndexWriter's pending counters follow
 * on its next maintenance run (living/maintenance.ts).
 *
 * The build row is one state machine with a terminal state on every path:
 *
 *   queued, no worker job   the dispatch is in flight (POST). Within the dispatch deadline it becomes
 *                           one of: the worker's state with its job recorded (accepted); `failed`
 *                           (`workers_unavailable`, the worker's refusal such as `upstream_rejected`,
 *                           or `dispatch_failed`); or `cancelled` (a cancel raced the dispatch, whose
 *                           worker job is then cancelled too). The dispatch runs under waitUntil and
 *                           not under the client's signal, so a client hanging up does not cut it
 *                           short. If even the recording fails (D1 down, the isolate killed), the row
 *                           is failed `build_lost` once older than the deadline, by the next build
 *                           request of the tenant or a poll of the build.
 *   queued|reading|encoding|graph|writing, with a worker job
 *                           polled (GET): the worker's state, until `succeeded` (manifest read, version
 *                           flipped), `failed` (the worker failed, forgot the job, or stayed silent past
 *                           BUILD_SILENCE_SECONDS) or `cancelled` (POST …/cancel).
 *   succeeded, failed, cancelled
 *                           terminal: never left, and answered from D1 without asking a worker.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { z } from "zod";
import { type BuildRequest, type BuildStatus, indexId } from "../../../shared/api/worker-api.ts";
import { uploadPrefix } from "../../../shared/index/keys.ts";
import { requireApiKey } from "../auth/require-api-key.ts";
import { failIndexVersion, getActiveBuild, getIndex } from "../db/indexes.ts";
import { reserveVersion } from "../db/living.ts";
import { indexWriterStub } from "../living/index-writer.ts";
import type { EdgeBindings, EdgeEnv } from "../env.ts";
import { ApiError, notFound, toApiError } from "../errors.ts";
import { waitUntil } from "../http/wait-until.ts";
import { integerSetting } from "../integer-setting.ts";
import { parseInput, readJson } from "../http/validate.ts";
import { tryOwners } from "../routing/owner-call.ts";
import { defaultFetcher, type Fetcher } from "../routing/worker-client.ts";
import { type WorkerPoolConfig, workerPoolFromEnv } from "../routing/worker-pool.ts";
import { s3For } from "../uploads/routes.ts";
import { getUpload } from "../db/uploads.ts";
import { type BuildBody, buildBodySchema, buildParamsSchema } from "./schemas.ts";
import { type BuildRecord, completeBuild, endBuild, failBuild, failStaleDispatches, getBuild, insertBuild, TERMINAL_STATES, updateRunningBuild } from "../db/builds.ts";
import { verifyUploadedFiles } from "./verify-upload.ts";
import { MANIFEST_READ_BACKOFF_MS, readVersionManifest, type S3Handle } from "./version-manifest.ts";
import { buildSilenceLimitSeconds, cancelWorkerJob, pollWorkerJob } from "./worker-jobs.ts";


export interface BuildDeps {
  fetcher?: Fetcher;
  /** Object storage; s3For(env) in production, a fault-injecting wrapper in tests. */
  s3?: (env: EdgeBindings) => S3Handle;
  /** Pauses between manifest reads after a transient S3 error (default MANIFEST_READ_BACKOFF_MS). */
  manifestBackoffMs?: readonly number[];
  /** Per scope; requireApiKey in production, a stub in unit tests. */
  auth?: { manage: MiddlewareHandler<EdgeEnv>; read: MiddlewareHandler<EdgeEnv> };
}

/** What clients see of a build. */
export function buildView(build: BuildRecord) {
  return {
    id: build.id,
    index: build.indexId,
    version: build.version,
    uploadId: build.uploadId,
    state: build.state,
    progress: build.progress,
    ...(build.error ? { error: build.error } : {}),
    createdAt: build.createdAt,
    updatedAt: build.updatedAt,
  };
}

const buildInProgress = (index: string) =>
  new ApiError(409, "build_in_progress", `index ${index} already has a build running; poll it or wait for it to finish`);

export function newBuildId(): string {
  return `b${[...crypto.getRandomValues(new Uint8Array(12))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

const indexParamsSchema = z.object({ id: indexId });
const JSONL_NAME = /\.jsonl(\.gz)?$/;

/** Upload file names → S3 keys in the worker's BuildInput shape; every named file must belong to the upload. */
function resolveInputs(body: BuildBody, files: { name: string; key: string }[]): BuildRequest["inputs"] {
  const byName = new Map(files.map((f) => [f.name, f.key]));
  const key = (name: string) => {
    const k = byName.get(name);
    if (!k) throw new ApiError(400, "invalid_request", `body.inputs: ${name} is not a file of upload ${body.uploadId}`);
    return k;
  };
  if (body.inputs) return body.inputs.map((i) => (i.format === "jsonl" ? { format: "jsonl", key: key(i.file) } : { format: "npy", key: key(i.file), idsKey: key(i.idsFile) }));
  const other = files.filter((f) => !JSONL_NAME.test(f.name));
  if (other.length > 0) throw new ApiError(400, "invalid_request", `body.inputs: required when the upload holds files other than .jsonl/.jsonl.gz (${other[0]!.name})`);
  return files.map((f) => ({ format: "jsonl" as const, key: f.key }));
}

export function createBuildRoutes(deps: BuildDeps = {}): Hono<EdgeEnv> {
  const fetcher = deps.fetcher ?? defaultFetcher;
  const s3Of = deps.s3 ?? s3For;
  const manifestBackoffMs = deps.manifestBackoffMs ?? MANIFEST_READ_BACKOFF_MS;
  const auth = deps.auth ?? {
    manage: requireApiKey("manage"),
    read: requireApiKey("search", "manage"),
  };
  const router = new Hono<EdgeEnv>();

  router.post("/:id/builds", auth.manage, async (c) => {
    const { id: index } = parseInput(indexParamsSchema, c.req.param(), "path");
    const body = await readJson(c, buildBodySchema);
    const tenant = c.get("auth").tenantId;
    const db = c.env.DB;
    const record = await getIndex(db, tenant, index);
    if (!record) throw notFound(`index ${index}`);
    const upload = await getUpload(db, tenant, index, body.uploadId);
    if (!upload) throw notFound(`upload ${body.uploadId}`);
    const inputs = resolveInputs(body, upload.files);
    const pool = workerPoolFromEnv(c.env);
    // Rows whose dispatch was never recorded would hold the index (and a tenant slot) forever.
    await failStaleDispatches(db, tenant, new Date(Date.now() - dispatchDeadlineMs(pool)).toISOString(), BUILD_LOST_IN_DISPATCH);
    // Cheap early answer for the common case; the insert below is what actually decides.
    if (await getActiveBuild(db, tenant, index)) throw buildInProgress(index);
    const used = new Set(inputs.flatMap((i) => (i.format === "npy" ? [i.key, i.idsKey] : [i.key])));
    // Keys come from the upload row, but check the prefix anyway: a build must only read this tenant's upload.
    const prefix = uploadPrefix(tenant, upload.id);
    if ([...used].some((k) => !k.startsWith(prefix))) throw new ApiError(400, "invalid_request", "inputs outside the upload");
    const { client, settings } = s3Of(c.env);
    await verifyUploadedFiles(client, settings.bucket, upload.files.filter((f) => used.has(f.key)));

    // The version records the head seq as of now: writes acknowledged after it stay the tail of the new version.
    const reserved = await reserveVersion(db, tenant, index, "build");
    if (reserved === null) throw notFound(`index ${index}`);
    const { version, coveredSeq } = reserved;
    const slots = maxBuildsPerTenant(c.env);
    const inserted = await insertBuild(db, { tenantId: tenant, id: newBuildId(), indexId: index, version, uploadId: upload.id }, slots);
    if (!inserted.ok) {
      await failIndexVersion(db, tenant, index, version);
      if (inserted.reason === "build_in_progress") throw buildInProgress(index);
      throw new ApiError(429, "tenant_build_limit", `this tenant already has ${slots} builds in progress, the most it may hold; wait for one to finish or cancel one`, { "retry-after": "30" });
    }
    const { inputs: _inputs, uploadId: _uploadId, ...options } = body;
    // The worker checks every document's declared fields (a wrong type fails the build, naming the
    // line and field) and stores them as the shards' filter columns.
    const filterFields = Object.keys(record.fields).length > 0 ? { filterFields: record.fields } : {};
    const request: BuildRequest = { ...options, tenant, index, version, inputs, coveredSeq, ...filterFields };
    // Not under the client's signal, and kept alive by waitUntil: a client hanging up must not cut
    // the dispatch off between the worker accepting the job and the edge recording it.
    const recorded = dispatchAndRecord(db, fetcher, pool, inserted.build, request);
    waitUntil(c, recorded.catch(() => {}));
    return c.json(buildView(await recorded), 202);
  });

  router.get("/:id/builds/:buildId", auth.read, async (c) => {
    const { index, buildId, tenant, db, build } = await buildOfPath(c);
    if (TERMINAL_STATES.includes(build.state)) return c.json(buildView(build));
    const pool = workerPoolFromEnv(c.env);
    if (!build.workerUrl || !build.workerJobId) {
      // The dispatch is in flight, or its recording failed: past the deadline it never will be recorded.
      if (Date.now() - Date.parse(build.updatedAt) > dispatchDeadlineMs(pool)) await failBuild(db, build, BUILD_LOST_IN_DISPATCH);
      return c.json(buildView((await getBuild(db, tenant, index, buildId))!));
    }
    const polled = await pollWorkerJob(fetcher, pool, { worker: build.workerUrl, jobId: build.workerJobId, tenant: build.tenantId }, c.req.raw.signal);
    if (polled.kind === "unreachable") {
      if (!silentTooLong(build, c.env)) return c.json({ ...buildView(build), workerReachable: false });
      // Its worker is gone for good (or renamed): without this, the index could never build again.
      await failBuild(db, build, {
        code: "build_lost",
        message: `the GPU worker running this build has not answered for over ${buildSilenceLimitSeconds(c.env)} s; start the build again`,
      });
    } else if (polled.kind === "lost") {
      // The worker no longer knows the job (restarted): it will never finish.
      await failBuild(db, build, { code: "build_lost", message: "the GPU worker running this build restarted; start the build again" });
    } else if (polled.status.state === "failed") {
      await failBuild(db, build, polled.status.error ?? { code: "build_failed", message: "the build failed" }, polled.status.progress);
    } else if (polled.status.state === "succeeded") {
      const built = await readVersionManifest(s3Of(c.env), build, manifestBackoffMs);
      if (built.kind === "ok") {
        // The flip supersedes a version: maintenance (the index's IndexWriter) sweeps it after the grace period.
        if (await completeBuild(db, build, built.version, polled.status.progress)) waitUntil(c, indexWriterStub(c.env, tenant, index).maintain(tenant, index).catch(() => {}));
      }
      else if (built.kind === "invalid") await failBuild(db, build, { code: "invalid_manifest", message: built.message }, polled.status.progress);
      // S3 did not answer definitely: the work is done, so keep the build open; the next poll reads again.
      else await updateRunningBuild(db, build, { state: "writing", progress: polled.status.progress });
    } else {
      await updateRunningBuild(db, build, { state: polled.status.state, progress: polled.status.progress });
    }
    return c.json(buildView((await getBuild(db, tenant, index, buildId))!));
  });

  router.post("/:id/builds/:buildId/cancel", auth.manage, async (c) => {
    const { index, buildId, tenant, db, build } = await buildOfPath(c);
    if (TERMINAL_STATES.includes(build.state)) throw buildFinished(build);
    // The worker first, so that it stops spending GPU time; the row is cancelled whatever it answers
    // (an unreachable worker's job, if it ever finishes, writes a version that is never activated).
    const workerStopped = build.workerUrl && build.workerJobId ? await cancelWorkerJob(fetcher, workerPoolFromEnv(c.env), { worker: build.workerUrl, jobId: build.workerJobId, tenant }) : null;
    await endBuild(db, build, "cancelled", { code: "cancelled", message: "the build was cancelled by the client" });
    const now = (await getBuild(db, tenant, index, buildId))!;
    if (now.state !== "cancelled") throw buildFinished(now);
    return c.json({ ...buildView(now), workerStopped });
  });

  return router;
}

const buildFinished = (build: BuildRecord) => new ApiError(409, "build_finished", `build ${build.id} has already ended (${build.state}); there is nothing to cancel`);

const BUILD_LOST_IN_DISPATCH = { code: "build_lost", message: "the build's dispatch to a GPU worker was never recorded; start the build again" };

/** Longest a dispatch can take: every owner's attempt timing out, plus time for D1 to record it. */
/** The build named by the path, in the caller's tenant only (404 otherwise). */
async function buildOfPath(c: Context<EdgeEnv>): Promise<{ index: string; buildId: string; tenant: string; db: D1Database; build: BuildRecord }> {
  const { id: index } = parseInput(indexParamsSchema, { id: c.req.param("id") }, "path");
  const { buildId } = parseInput(buildParamsSchema, c.req.param(), "path");
  const tenant = c.get("auth").tenantId;
  const db = c.env.DB;
  const build = await getBuild(db, tenant, index, buildId);
  if (!build) throw notFound(`build ${buildId}`);
  return { index, buildId, tenant, db, build };
}

function dispatchDeadlineMs(pool: WorkerPoolConfig): number {
  return pool.timeoutMs * DISPATCH_ATTEMPTS + 30_000;
}
const DISPATCH_ATTEMPTS = 3;

export const DEFAULT_MAX_BUILDS_PER_TENANT = 2;

/** MAX_BUILDS_PER_TENANT: builds in progress one tenant may hold across the fleet (each is a GPU worker's only build slot). */
export function maxBuildsPerTenant(env: Pick<EdgeBindings, "MAX_BUILDS_PER_TENANT">): number {
  return integerSetting("MAX_BUILDS_PER_TENANT", env.MAX_BUILDS_PER_TENANT, DEFAULT_MAX_BUILDS_PER_TENANT, { min: 1 });
}


/**
 * Dispatch, then record, as one step that always leaves the row in a known state: the worker's job
 * recorded, or the row failed (see the state machine at the top). Resolves to the recorded row, or
 * throws the ApiError for the client.
 */
async function dispatchAndRecord(db: D1Database, fetcher: Fetcher, pool: WorkerPoolConfig, build: BuildRecord, request: BuildRequest): Promise<BuildRecord> {
  const failRow = async (error: { code: string; message: string }) => {
    // If D1 refuses this too, the row is reaped as build_lost after the dispatch deadline.
    await failBuild(db, build, error).catch((e: unknown) => console.error("could not record a failed build dispatch", (e as Error)?.message));
  };
  let dispatched: { worker: string; value: BuildStatus } | null;
  try {
    dispatched = await dispatchBuild(fetcher, pool, request);
  } catch (error) {
    // A worker's refusal (4xx; a 401/403 means clock skew or a rotated signing secret), via the one
    // error table: a 400 is passed on, anything else is a logged 502 upstream_rejected.
    const refusal = toApiError(error);
    await failRow({ code: refusal.code, message: refusal.message });
    throw refusal;
  }
  if (!dispatched) {
    await failRow({ code: "workers_unavailable", message: "no GPU worker accepted the build" });
    throw new ApiError(503, "workers_unavailable", "no GPU worker accepted the build; try again later", { "retry-after": "5" });
  }
  const { worker, value: status } = dispatched;
  let recorded: BuildRecord | null;
  try {
    recorded = await updateRunningBuild(db, build, { state: status.state, progress: status.progress, workerJobId: status.jobId, workerUrl: worker });
  } catch (error) {
    // A worker runs a job that the edge could not record: stop it, so it does not build for nobody.
    console.error("could not record a dispatched build", (error as Error)?.message);
    await cancelWorkerJob(fetcher, pool, { worker, jobId: status.jobId, tenant: request.tenant });
    await failRow({ code: "dispatch_failed", message: "the build could not be recorded; start it again" });
    throw new ApiError(503, "dispatch_failed", "the build could not be recorded; start it again", { "retry-after": "5" });
  }
  if (recorded) return recorded;
  // The row ended while the dispatch was in flight (cancelled): nobody waits for the worker's job.
  await cancelWorkerJob(fetcher, pool, { worker, jobId: status.jobId, tenant: request.tenant });
  return (await getBuild(db, build.tenantId, build.indexId, build.id)) ?? build;
}


/** updated_at moves on every answered poll, so it is the last time the worker was heard from. */
function silentTooLong(build: { updatedAt: string }, env: Pick<EdgeBindings, "BUILD_SILENCE_SECONDS">): boolean {
  return Date.now() - Date.parse(build.updatedAt) > buildSilenceLimitSeconds(env) * 1000;
}

/**
 * The build goes to the first owner of the index by rendezvous; on a network error, timeout or 5xx,
 * the next. A refusal (WorkerRejectedError) is thrown. Each attempt has the pool's timeout, so the
 * whole dispatch is bounded by dispatchDeadlineMs.
 */
function dispatchBuild(fetcher: Fetcher, pool: WorkerPoolConfig, request: BuildRequest): Promise<{ worker: string; value: BuildStatus } | null> {
  return tryOwners({
    key: `${request.tenant}/${request.index}/builds`,
    pool,
    fetcher,
    path: "/v1/builds",
    tenant: request.tenant,
    json: request,
    accept: "application/json",
    maxAttempts: DISPATCH_ATTEMPTS,
    read: async (response) => (await response.json()) as BuildStatus,
  });
}

export const buildRoutes = createBuildRoutes();
