/**
 * Index builds (mounted under /v1/indexes):
 *
 *   POST /:id/builds            (scope manage)   check the upload (HEAD), reserve the next version,
 *                                                record the build, dispatch it to a GPU worker: 202
 *   GET  /:id/builds/:buildId   (search|manage)  poll the worker, record progress; on success read the
 *                                                version's manifest and flip the active version
 *
 * A second build of an index while one runs is 409 (the D1 partial unique index decides, not a
 * check-then-insert). A failed build marks its version failed and leaves the active one serving.
 */
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Hono, type MiddlewareHandler } from "hono";
import { z } from "zod";
import { type BuildRequest, type BuildStatus, indexId } from "../../../shared/api/worker-api.ts";
import { manifestKey, uploadPrefix } from "../../../shared/index/keys.ts";
import { indexManifestSchema } from "../../../shared/index/manifest.ts";
import { requireApiKey } from "../auth/require-api-key.ts";
import { failIndexVersion, getActiveBuild, getIndex, reserveIndexVersion } from "../db/indexes.ts";
import type { EdgeBindings, EdgeEnv } from "../env.ts";
import { ApiError, notFound, WorkerRejectedError } from "../errors.ts";
import { parseInput, readJson } from "../http/validate.ts";
import { tryOwners } from "../routing/owner-call.ts";
import { attemptWorker, defaultFetcher, type Fetcher } from "../routing/worker-client.ts";
import { type WorkerPoolConfig, workerPoolFromEnv } from "../routing/worker-pool.ts";
import { s3For } from "../uploads/routes.ts";
import { getUpload } from "../db/uploads.ts";
import { type BuildBody, buildBodySchema, buildParamsSchema } from "./schemas.ts";
import { type BuildRecord, completeBuild, failBuild, getBuild, insertBuild, TERMINAL_STATES, updateRunningBuild } from "../db/builds.ts";
import { verifyUploadedFiles } from "./verify-upload.ts";

export interface BuildDeps {
  fetcher?: Fetcher;
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
    if (!(await getIndex(db, tenant, index))) throw notFound(`index ${index}`);
    const upload = await getUpload(db, tenant, index, body.uploadId);
    if (!upload) throw notFound(`upload ${body.uploadId}`);
    const inputs = resolveInputs(body, upload.files);
    // Cheap early answer for the common case; the insert below is what actually decides.
    if (await getActiveBuild(db, tenant, index)) throw buildInProgress(index);
    const used = new Set(inputs.flatMap((i) => (i.format === "npy" ? [i.key, i.idsKey] : [i.key])));
    // Keys come from the upload row, but check the prefix anyway: a build must only read this tenant's upload.
    const prefix = uploadPrefix(tenant, upload.id);
    if ([...used].some((k) => !k.startsWith(prefix))) throw new ApiError(400, "invalid_request", "inputs outside the upload");
    const pool = workerPoolFromEnv(c.env);
    const { client, settings } = s3For(c.env);
    await verifyUploadedFiles(client, settings.bucket, upload.files.filter((f) => used.has(f.key)));

    const version = await reserveIndexVersion(db, tenant, index);
    if (version === null) throw notFound(`index ${index}`);
    const inserted = await insertBuild(db, { tenantId: tenant, id: newBuildId(), indexId: index, version, uploadId: upload.id });
    if (!inserted.ok) {
      await failIndexVersion(db, tenant, index, version);
      throw buildInProgress(index);
    }
    const build = inserted.build;
    const { inputs: _inputs, uploadId: _uploadId, ...options } = body;
    const request: BuildRequest = { ...options, tenant, index, version, inputs };
    const dispatched = await dispatchBuild(fetcher, pool, request, c.req.raw.signal);
    if (!dispatched) {
      await failBuild(db, build, { code: "workers_unavailable", message: "no GPU worker accepted the build" });
      throw new ApiError(503, "workers_unavailable", "no GPU worker accepted the build; try again later", { "retry-after": "5" });
    }
    const updated = await updateRunningBuild(db, build, { state: dispatched.status.state, progress: dispatched.status.progress, workerJobId: dispatched.status.jobId, workerUrl: dispatched.worker });
    return c.json(buildView(updated ?? build), 202);
  });

  router.get("/:id/builds/:buildId", auth.read, async (c) => {
    const { id: index } = parseInput(indexParamsSchema, { id: c.req.param("id") }, "path");
    const { buildId } = parseInput(buildParamsSchema, c.req.param(), "path");
    const tenant = c.get("auth").tenantId;
    const db = c.env.DB;
    const build = await getBuild(db, tenant, index, buildId);
    if (!build) throw notFound(`build ${buildId}`);
    if (TERMINAL_STATES.includes(build.state) || !build.workerUrl || !build.workerJobId) return c.json(buildView(build));
    const polled = await pollBuild(fetcher, workerPoolFromEnv(c.env), build, c.req.raw.signal);
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
      const built = await readBuiltVersion(s3For(c.env), build);
      if (built.ok) await completeBuild(db, build, built.version, polled.status.progress);
      else await failBuild(db, build, { code: "invalid_manifest", message: built.message }, polled.status.progress);
    } else {
      await updateRunningBuild(db, build, { state: polled.status.state, progress: polled.status.progress });
    }
    return c.json(buildView((await getBuild(db, tenant, index, buildId))!));
  });

  return router;
}

/** How long a running build's worker may stay unreachable before the build is failed. */
export const DEFAULT_BUILD_SILENCE_SECONDS = 900;

function buildSilenceLimitSeconds(env: Pick<EdgeBindings, "BUILD_SILENCE_SECONDS">): number {
  const seconds = Number(env.BUILD_SILENCE_SECONDS ?? DEFAULT_BUILD_SILENCE_SECONDS);
  return Number.isFinite(seconds) && seconds > 0 ? seconds : DEFAULT_BUILD_SILENCE_SECONDS;
}

/** updated_at moves on every answered poll, so it is the last time the worker was heard from. */
function silentTooLong(build: { updatedAt: string }, env: Pick<EdgeBindings, "BUILD_SILENCE_SECONDS">): boolean {
  return Date.now() - Date.parse(build.updatedAt) > buildSilenceLimitSeconds(env) * 1000;
}

/** The build goes to the first owner of the index by rendezvous; on a network error, timeout or 5xx, the next. */
async function dispatchBuild(fetcher: Fetcher, pool: WorkerPoolConfig, request: BuildRequest, signal: AbortSignal): Promise<{ worker: string; status: BuildStatus } | null> {
  try {
    const answered = await tryOwners({
      key: `${request.tenant}/${request.index}/builds`,
      pool,
      fetcher,
      path: "/v1/builds",
      tenant: request.tenant,
      json: request,
      accept: "application/json",
      signal,
      read: async (response) => (await response.json()) as BuildStatus,
    });
    return answered && { worker: answered.worker, status: answered.value };
  } catch (error) {
    if (!(error instanceof WorkerRejectedError)) throw error;
    // The edge validated the request with the worker's own schema, so this is a contract bug: say so loudly.
    console.error("worker refused a build request", error.status, error.code, error.message.slice(0, 500));
    throw new ApiError(502, "upstream_rejected", "the GPU worker refused the build request");
  }
}

type PollResult = { kind: "status"; status: BuildStatus } | { kind: "lost" } | { kind: "unreachable" };

async function pollBuild(fetcher: Fetcher, pool: WorkerPoolConfig, build: BuildRecord, signal: AbortSignal): Promise<PollResult> {
  try {
    const outcome = await attemptWorker(
      { fetcher, secret: pool.secret, worker: build.workerUrl!, method: "GET", path: `/v1/builds/${encodeURIComponent(build.workerJobId!)}`, tenant: build.tenantId },
      { timeoutMs: pool.timeoutMs, parent: signal, read: async (response) => (await response.json()) as BuildStatus },
    );
    return outcome.ok ? { kind: "status", status: outcome.value } : { kind: "unreachable" };
  } catch (error) {
    if (!(error instanceof WorkerRejectedError)) throw error;
    // 404: the worker no longer knows the job (it restarted). Other refusals: treated as not reachable.
    return error.status === 404 ? { kind: "lost" } : { kind: "unreachable" };
  }
}

/** The new version's manifest (written last by the worker): its shard list is what search routes on. */
async function readBuiltVersion(
  s3: { client: S3Client; settings: { bucket: string } },
  build: BuildRecord,
): Promise<{ ok: true; version: { docCount: number; manifestKey: string; shards: Array<{ id: string; bytes: number; docCount: number }> } } | { ok: false; message: string }> {
  const key = manifestKey(build.tenantId, build.indexId, build.version);
  let text: string;
  try {
    const object = await s3.client.send(new GetObjectCommand({ Bucket: s3.settings.bucket, Key: key }));
    text = await object.Body!.transformToString();
  } catch {
    return { ok: false, message: "the build reported success but its manifest could not be read" };
  }
  let parsed;
  try {
    parsed = indexManifestSchema.safeParse(JSON.parse(text));
  } catch {
    return { ok: false, message: "the build's manifest is not JSON" };
  }
  if (!parsed.success) return { ok: false, message: "the build's manifest is invalid" };
  const m = parsed.data;
  if (m.tenant !== build.tenantId || m.index !== build.indexId || m.indexVersion !== build.version) {
    return { ok: false, message: "the build's manifest names another index version" };
  }
  return { ok: true, version: { docCount: m.docCount, manifestKey: key, shards: m.shards.map((s) => ({ id: s.id, bytes: s.bytes, docCount: s.docCount })) } };
}

export const buildRoutes = createBuildRoutes();
