/**
 * Builds end to end at the edge: real D1 (migrated schema), real S3 (radosgw: uploads, HEAD checks,
 * manifests), and the fake worker pool for the GPU side (edge/test/fake-workers.ts).
 */
import { GetObjectCommand, PutObjectCommand, type S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { createExecutionContext, env, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { BuildRequest, BuildState, BuildStatus } from "../../../shared/api/worker-api.ts";
import { manifestKey } from "../../../shared/index/keys.ts";
import { fakeWorkerPool } from "../../test/fake-workers.ts";
import { seedIndex, stubAuth, testApp } from "../../test/route-harness.ts";
import { createIndex } from "../db/indexes.ts";
import { WRITER_KEYS } from "../living/writer-state.ts";
import { ownersFor } from "../routing/rendezvous.ts";
import { parseWorkerPool } from "../routing/worker-pool.ts";
import { d1SearchCatalog } from "../search/catalog.ts";
import { createUploadRoutes } from "../uploads/routes.ts";
import { freshBucket, hexDigest } from "../../test/s3.ts";
import { s3For } from "../uploads/routes.ts";
import { type BuildDeps, createBuildRoutes } from "./routes.ts";

const SECRET = (env as unknown as { WORKER_SIGNING_SECRET: string }).WORKER_SIGNING_SECRET;
const WORKERS = parseWorkerPool((env as unknown as { GPU_WORKERS: string }).GPU_WORKERS);
type View = {
  id: string;
  version: number;
  state: string;
  progress: Record<string, number>;
  error?: { code: string; message: string };
  workerReachable?: boolean;
  workerStopped?: boolean | null;
};

/**
 * env.DB, except that statements whose SQL `fails` matches fail when run (alone or in a batch), as
 * in a D1 outage: they are swapped for a query of a table that does not exist.
 */
/** The statements that record a dispatched build or fail it (db/builds.ts updateRunningBuild, endBuild). */
const recordingOrFailingTheRow = (sql: string) => sql.includes("worker_job_id = COALESCE") || sql.includes("SET state = ?4, error = ?5");

function failingDb(fails: (sql: string) => boolean): D1Database {
  return new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => target.prepare(fails(sql) ? "SELECT * FROM simulated_d1_outage WHERE ?1 IS NOT NULL" : sql);
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function manifest(tenant: string, index: string, version: number) {
  return {
    format: "hypencoder.index",
    version: 1,
    tenant,
    index,
    indexVersion: version,
    createdAt: new Date().toISOString(),
    model: { id: "a".repeat(64), embeddingDim: 8 },
    dtype: "float16",
    docCount: 3,
    graph: { metric: "l2", degree: 2, builder: "test", reachableFraction: 1 },
    fields: ["text"],
    shards: [
      { id: "s0", key: "shards/s0.hxs", bytes: 100, sha256: "b".repeat(64), docStart: 0, docCount: 2 },
      { id: "s1", key: "shards/s1.hxs", bytes: 50, sha256: "c".repeat(64), docStart: 2, docCount: 1 },
    ],
  };
}

describe("builds", () => {
  let client: S3Client;
  let bucket: string;
  let tenant: string;
  let pool: ReturnType<typeof fakeWorkerPool>;
  /** What the fake worker reports for the job, per poll. */
  let jobState: BuildState;
  let jobError: BuildStatus["error"];
  const data = new TextEncoder().encode('{"id":"1","text":"a"}\n');

  const status = (request: Pick<BuildRequest, "tenant" | "index" | "version">, state: BuildState): BuildStatus => ({
    jobId: "job-1",
    tenant: request.tenant,
    index: request.index,
    version: request.version,
    state,
    progress: { docsRead: 3, docsEncoded: state === "queued" ? 0 : 3, docsTotal: 3, graphPercent: 0, bytesWritten: 0 },
    ...(jobError ? { error: jobError } : {}),
    startedAt: new Date().toISOString(),
  });

  beforeEach(async () => {
    ({ client, bucket } = await freshBucket());
    ({ tenant } = await seedIndex(env.DB));
    pool = fakeWorkerPool(SECRET);
    deps = {};
    envOverrides = {};
    jobState = "encoding";
    jobError = undefined;
    let lastRequest: BuildRequest | undefined;
    pool.routes.set("POST /v1/builds", (call) => {
      lastRequest = call.body as BuildRequest;
      return Response.json(status(lastRequest, "queued"), { status: 202 });
    });
    pool.routes.set("GET /v1/builds/:id", () => Response.json(status(lastRequest!, jobState)));
    pool.routes.set("POST /v1/builds/job-1/cancel", () => Response.json({ ...status(lastRequest!, "failed"), error: { code: "cancelled", message: "the build was cancelled" } }));
  });

  let deps: Omit<BuildDeps, "auth" | "fetcher"> = {};
  let envOverrides: Record<string, unknown> = {};
  const app = () => {
    const auth = stubAuth(() => tenant);
    const a = testApp(createBuildRoutes({ fetcher: pool.fetcher, auth: { manage: auth, read: auth }, ...deps }));
    a.route("/v1/indexes", createUploadRoutes({ auth }));
    return a;
  };
  const request = (path: string, init?: RequestInit) => app().request(path, init, { ...env, S3_BUCKET: bucket, ...envOverrides }, createExecutionContext());
  const postJson = (path: string, body: unknown, init: RequestInit = {}) =>
    request(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), ...init });
  const cancel = (buildId: string) => request(`/v1/indexes/docs/builds/${buildId}/cancel`, { method: "POST" });
  const buildRow = (id: string) => env.DB.prepare("SELECT state, worker_job_id, error FROM builds WHERE tenant_id = ?1 AND id = ?2").bind(tenant, id).first<{ state: string; worker_job_id: string | null; error: string | null }>();
  const onlyBuildOf = async () => (await env.DB.prepare("SELECT id FROM builds WHERE tenant_id = ?1 ORDER BY created_at DESC LIMIT 1").bind(tenant).first<{ id: string }>())!.id;
  const workerCalls = (suffix: string) => pool.calls.filter((c) => c.path.endsWith(suffix));

  /** Upload `data` as docs.jsonl through the presigned URL; returns the upload id. */
  async function uploadDocs(put = true, index = "docs"): Promise<string> {
    const response = await postJson(`/v1/indexes/${index}/uploads`, { files: [{ name: "docs.jsonl", bytes: data.length, md5: await hexDigest("MD5", data) }] });
    const body = await response.json<{ id: string; files: Array<{ url: string; headers: Record<string, string> }> }>();
    if (put) expect((await fetch(body.files[0]!.url, { method: "PUT", headers: body.files[0]!.headers, body: data })).status).toBe(200);
    return body.id;
  }
  const poll = async (buildId: string) => (await request(`/v1/indexes/docs/builds/${buildId}`)).json<View>();

  it("dispatches a signed build, polls progress, and flips the active version on success", async () => {
    const uploadId = await uploadDocs();
    const started = await postJson("/v1/indexes/docs/builds", { uploadId, degree: 8 });
    expect(started.status).toBe(202);
    const build = await started.json<View>();
    expect(build).toMatchObject({ version: 1, state: "queued" });
    const sent = pool.calls.find((c) => c.path === "/v1/builds")!;
    expect(sent.tenant).toBe(tenant);
    expect(sent.body).toMatchObject({ tenant, index: "docs", version: 1, degree: 8, inputs: [{ format: "jsonl", key: `tenants/${tenant}/uploads/${uploadId}/docs.jsonl` }] });

    // A second build while this one runs: 409, whatever the upload.
    const second = await postJson("/v1/indexes/docs/builds", { uploadId });
    expect(second.status).toBe(409);
    expect((await second.json<{ error: { code: string } }>()).error.code).toBe("build_in_progress");

    expect(await poll(build.id)).toMatchObject({ state: "encoding", progress: { docsEncoded: 3 } });
    expect(await d1SearchCatalog(env.DB, tenant, "docs")).toEqual({ ok: false, reason: "not_ready" });

    jobState = "succeeded";
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKey(tenant, "docs", 1), Body: JSON.stringify(manifest(tenant, "docs", 1)) }));
    expect(await poll(build.id)).toMatchObject({ state: "succeeded" });
    expect(await d1SearchCatalog(env.DB, tenant, "docs")).toEqual({ ok: true, active: { version: 1, shards: ["s0", "s1"], coveredSeq: 0, headSeq: 0 } });
    const index = await env.DB.prepare("SELECT active_version, status, doc_count FROM indexes WHERE tenant_id = ?1 AND id = 'docs'").bind(tenant).first();
    expect(index).toEqual({ active_version: 1, status: "ready", doc_count: 3 });
    // The flip schedules the index's maintenance (GC of what it superseded), even with no write ever made.
    const writer = (env as unknown as { INDEX_WRITER: DurableObjectNamespace }).INDEX_WRITER;
    const stub = writer.get(writer.idFromName(`${tenant}/docs`));
    await vi.waitFor(async () => expect(await runInDurableObject(stub, (_instance, state) => state.storage.get(WRITER_KEYS.index))).toBe("docs"));

    // Terminal builds are answered from D1 without asking the worker again.
    const calls = pool.calls.length;
    expect(await poll(build.id)).toMatchObject({ state: "succeeded" });
    expect(pool.calls.length).toBe(calls);

    // A failed next build leaves version 1 serving, and its version is marked failed.
    jobState = "failed";
    jobError = { code: "invalid_input", message: "docs.jsonl line 1: no text" };
    const next = await (await postJson("/v1/indexes/docs/builds", { uploadId })).json<View>();
    expect(next.version).toBe(2);
    expect(await poll(next.id)).toMatchObject({ state: "failed", error: { code: "invalid_input" } });
    expect(await d1SearchCatalog(env.DB, tenant, "docs")).toEqual({ ok: true, active: { version: 1, shards: ["s0", "s1"], coveredSeq: 0, headSeq: 0 } });
    const v2 = await env.DB.prepare("SELECT state FROM index_versions WHERE tenant_id = ?1 AND index_id = 'docs' AND version = 2").bind(tenant).first();
    expect(v2).toEqual({ state: "failed" });
  });

  it("sends the index's declared fields as filterFields (and none for an index without them)", async () => {
    const fields = { section: "string", year: "number" } as const;
    expect((await createIndex(env.DB, tenant, "typed", fields)).ok).toBe(true);
    expect((await postJson("/v1/indexes/typed/builds", { uploadId: await uploadDocs(true, "typed") })).status).toBe(202);
    expect(pool.calls.find((c) => c.path === "/v1/builds")!.body).toMatchObject({ index: "typed", filterFields: fields });
    expect((await postJson("/v1/indexes/docs/builds", { uploadId: await uploadDocs() })).status).toBe(202);
    const plain = pool.calls.filter((c) => c.path === "/v1/builds").at(-1)!.body as BuildRequest;
    expect(plain.index).toBe("docs");
    expect(plain).not.toHaveProperty("filterFields");
  });

  it("records the head seq at dispatch as the version's coveredSeq, the manifest's on success, and superseded_at on the replaced version", async () => {
    const versionRow = (v: number) =>
      env.DB.prepare("SELECT state, kind, covered_seq, superseded_at FROM index_versions WHERE tenant_id = ?1 AND index_id = 'docs' AND version = ?2")
        .bind(tenant, v)
        .first<{ state: string; kind: string; covered_seq: number; superseded_at: string | null }>();
    const succeedWith = async (version: number, coveredSeq: number) => {
      jobState = "succeeded";
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKey(tenant, "docs", version), Body: JSON.stringify({ ...manifest(tenant, "docs", version), coveredSeq }) }));
    };
    const uploadId = await uploadDocs();
    await env.DB.prepare("UPDATE indexes SET head_seq = 7 WHERE tenant_id = ?1 AND id = 'docs'").bind(tenant).run();
    const first = await (await postJson("/v1/indexes/docs/builds", { uploadId })).json<View>();
    expect(pool.calls.find((c) => c.path === "/v1/builds")!.body).toMatchObject({ version: 1, coveredSeq: 7 });
    expect(await versionRow(1)).toEqual({ state: "building", kind: "build", covered_seq: 7, superseded_at: null });
    // Writes acknowledged while it builds do not move the recorded seq.
    await env.DB.prepare("UPDATE indexes SET head_seq = 9 WHERE tenant_id = ?1 AND id = 'docs'").bind(tenant).run();
    await succeedWith(1, 7);
    expect(await poll(first.id)).toMatchObject({ state: "succeeded" });
    expect(await versionRow(1)).toEqual({ state: "ready", kind: "build", covered_seq: 7, superseded_at: null });

    jobState = "encoding";
    const second = await (await postJson("/v1/indexes/docs/builds", { uploadId })).json<View>();
    expect(pool.calls.filter((c) => c.path === "/v1/builds").at(-1)!.body).toMatchObject({ version: 2, coveredSeq: 9 });
    await succeedWith(2, 9);
    expect(await poll(second.id)).toMatchObject({ state: "succeeded" });
    expect(await versionRow(2)).toMatchObject({ state: "ready", covered_seq: 9, superseded_at: null });
    const replaced = await versionRow(1);
    expect(replaced?.superseded_at).not.toBeNull();
    expect(Date.now() - Date.parse(replaced!.superseded_at!)).toBeLessThan(60_000);
  });

  it("concurrent build requests: exactly one is accepted", async () => {
    const uploadId = await uploadDocs();
    const statuses = (await Promise.all([1, 2, 3].map(() => postJson("/v1/indexes/docs/builds", { uploadId })))).map((r) => r.status).sort();
    expect(statuses).toEqual([202, 409, 409]);
  });

  it("a success whose manifest is missing fails the build instead of activating it", async () => {
    const uploadId = await uploadDocs();
    const build = await (await postJson("/v1/indexes/docs/builds", { uploadId })).json<View>();
    jobState = "succeeded";
    expect(await poll(build.id)).toMatchObject({ state: "failed", error: { code: "invalid_manifest" } });
    expect(await d1SearchCatalog(env.DB, tenant, "docs")).toEqual({ ok: false, reason: "not_ready" });
  });

  it("refuses to build from files that were not uploaded or differ from the declaration", async () => {
    const missing = await uploadDocs(false);
    const response = await postJson("/v1/indexes/docs/builds", { uploadId: missing });
    expect(response.status).toBe(409);
    expect((await response.json<{ error: { message: string } }>()).error.message).toContain("docs.jsonl: not uploaded");

    // Same size, other bytes, written around the presigned URL: the ETag (MD5) check catches it.
    const swapped = await uploadDocs(false);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `tenants/${tenant}/uploads/${swapped}/docs.jsonl`, Body: new TextEncoder().encode('{"id":"1","text":"b"}\n') }));
    const mismatch = await postJson("/v1/indexes/docs/builds", { uploadId: swapped });
    expect(mismatch.status).toBe(409);
    expect((await mismatch.json<{ error: { message: string } }>()).error.message).toContain("MD5");
    expect(pool.calls.filter((c) => c.path === "/v1/builds")).toHaveLength(0);
  });

  it("fails over to the next worker on dispatch; 503 and a failed build when none accepts", async () => {
    const uploadId = await uploadDocs();
    const [first, second, third] = ownersFor(`${tenant}/docs/builds`, WORKERS);
    pool.behaviour.set(first!, "down");
    pool.behaviour.set(second!, "http500");
    const ok = await postJson("/v1/indexes/docs/builds", { uploadId });
    expect(ok.status).toBe(202);
    expect(pool.calls.filter((c) => c.path === "/v1/builds").map((c) => c.worker)).toEqual([first, second, third]);
    jobState = "failed";
    await poll((await ok.json<View>()).id);

    for (const w of WORKERS) pool.behaviour.set(w, "down");
    const none = await postJson("/v1/indexes/docs/builds", { uploadId });
    expect(none.status).toBe(503);
    // The failed dispatch did not leave a "running" build behind: the next request may build.
    pool.behaviour.clear();
    expect((await postJson("/v1/indexes/docs/builds", { uploadId })).status).toBe(202);
  });

  it("a worker that forgot the job (restart) fails the build; an unreachable one reports the last state", async () => {
    const uploadId = await uploadDocs();
    const build = await (await postJson("/v1/indexes/docs/builds", { uploadId })).json<View>();
    for (const w of WORKERS) pool.behaviour.set(w, "down");
    expect(await poll(build.id)).toMatchObject({ state: "queued", workerReachable: false });
    pool.behaviour.clear();
    pool.routes.set("GET /v1/builds/:id", () => Response.json({ error: { code: "build_not_found", message: "no such build job for this tenant" } }, { status: 404 }));
    expect(await poll(build.id)).toMatchObject({ state: "failed", error: { code: "build_lost" } });
  });

  it("a build whose worker stays unreachable past the limit fails, and the index can build again", async () => {
    const uploadId = await uploadDocs();
    const build = await (await postJson("/v1/indexes/docs/builds", { uploadId })).json<View>();
    for (const w of WORKERS) pool.behaviour.set(w, "down");
    expect(await poll(build.id)).toMatchObject({ state: "queued", workerReachable: false });
    expect((await postJson("/v1/indexes/docs/builds", { uploadId })).status).toBe(409);
    // Last heard from an hour ago: past the 900 s default.
    await env.DB.prepare("UPDATE builds SET updated_at = ?1 WHERE id = ?2").bind(new Date(Date.now() - 3_600_000).toISOString(), build.id).run();
    const failed = await poll(build.id);
    expect(failed).toMatchObject({ state: "failed", error: { code: "build_lost" } });
    expect(failed.error!.message).toContain("has not answered for over 900 s");
    pool.behaviour.clear();
    expect((await postJson("/v1/indexes/docs/builds", { uploadId })).status).toBe(202);
  });

  describe("every dispatch path ends the row", () => {
    it("a worker refusing the build (4xx) fails it with the refusal, and the index can build again", async () => {
      const uploadId = await uploadDocs();
      pool.routes.set("POST /v1/builds", () => Response.json({ error: { code: "build_conflict", message: "index docs already has a build running" } }, { status: 409 }));
      const refused = await postJson("/v1/indexes/docs/builds", { uploadId });
      expect(refused.status).toBe(502);
      expect((await refused.json<{ error: { code: string } }>()).error.code).toBe("upstream_rejected");
      expect(await buildRow(await onlyBuildOf())).toMatchObject({ state: "failed" });
      const v1 = await env.DB.prepare("SELECT state FROM index_versions WHERE tenant_id = ?1 AND index_id = 'docs' AND version = 1").bind(tenant).first();
      expect(v1).toEqual({ state: "failed" });
      pool.routes.delete("POST /v1/builds");
      pool.routes.set("POST /v1/builds", (call) => Response.json(status(call.body as BuildRequest, "queued"), { status: 202 }));
      expect((await postJson("/v1/indexes/docs/builds", { uploadId })).status).toBe(202);
    });

    it("a worker refusing the edge's signature (401: clock skew, rotated secret) fails the build, not leaves it queued", async () => {
      const uploadId = await uploadDocs();
      const rotated = fakeWorkerPool("a-rotated-secret-the-edge-does-not-have");
      const edgePool = pool;
      pool = rotated;
      const refused = await postJson("/v1/indexes/docs/builds", { uploadId });
      expect(refused.status).toBe(502);
      expect(await buildRow(await onlyBuildOf())).toMatchObject({ state: "failed", error: expect.stringContaining("upstream_rejected") });
      pool = edgePool;
      expect((await postJson("/v1/indexes/docs/builds", { uploadId })).status).toBe(202);
    });

    it("a client hanging up mid-dispatch does not cut the recording short", async () => {
      const uploadId = await uploadDocs();
      const client = new AbortController();
      const accept = pool.routes.get("POST /v1/builds")!;
      pool.routes.set("POST /v1/builds", async (call) => {
        // The worker takes the job; then the client hangs up before the answer arrives, and a fetch
        // under an aborted signal loses its answer.
        const accepted = await accept(call);
        client.abort(new DOMException("the client went away", "AbortError"));
        await new Promise((r) => setTimeout(r, 20));
        if (call.aborted()) throw new DOMException("the fetch was aborted", "AbortError");
        return accepted;
      });
      await Promise.resolve(postJson("/v1/indexes/docs/builds", { uploadId }, { signal: client.signal })).catch(() => undefined);
      const id = await onlyBuildOf();
      // The worker accepted the job, and the edge recorded it: the build is polled, not stuck.
      await expect.poll(async () => (await buildRow(id))?.worker_job_id, { timeout: 5_000 }).toBe("job-1");
      jobState = "failed";
      expect(await poll(id)).toMatchObject({ state: "failed" });
    });

    it("a D1 failure recording the accepted job cancels the worker's job and fails the row", async () => {
      const uploadId = await uploadDocs();
      envOverrides = { DB: failingDb((sql) => sql.includes("worker_job_id = COALESCE")) };
      const response = await postJson("/v1/indexes/docs/builds", { uploadId });
      expect(response.status).toBe(503);
      expect((await response.json<{ error: { code: string } }>()).error.code).toBe("dispatch_failed");
      expect(workerCalls("/cancel").map((c) => c.path)).toEqual(["/v1/builds/job-1/cancel"]);
      expect(await buildRow(await onlyBuildOf())).toMatchObject({ state: "failed", error: expect.stringContaining("dispatch_failed") });
      envOverrides = {};
      expect((await postJson("/v1/indexes/docs/builds", { uploadId })).status).toBe(202);
    });

    it("when D1 refuses even the failure, the row is reaped after the dispatch deadline", async () => {
      const uploadId = await uploadDocs();
      envOverrides = { DB: failingDb(recordingOrFailingTheRow) };
      expect((await postJson("/v1/indexes/docs/builds", { uploadId })).status).toBe(503);
      envOverrides = {};
      const id = await onlyBuildOf();
      expect(await buildRow(id)).toMatchObject({ state: "queued", worker_job_id: null });
      // Within the deadline it is a dispatch in flight: 409, and a poll leaves it.
      expect((await postJson("/v1/indexes/docs/builds", { uploadId })).status).toBe(409);
      expect(await poll(id)).toMatchObject({ state: "queued" });
      // An hour later it cannot be in flight any more: the next request reaps it and builds.
      await env.DB.prepare("UPDATE builds SET updated_at = ?1 WHERE tenant_id = ?2 AND id = ?3").bind(new Date(Date.now() - 3_600_000).toISOString(), tenant, id).run();
      expect((await postJson("/v1/indexes/docs/builds", { uploadId })).status).toBe(202);
      expect(await poll(id)).toMatchObject({ state: "failed", error: { code: "build_lost" } });
    });

    it("a poll of a row whose dispatch was never recorded fails it after the deadline", async () => {
      const uploadId = await uploadDocs();
      envOverrides = { DB: failingDb(recordingOrFailingTheRow) };
      await postJson("/v1/indexes/docs/builds", { uploadId });
      envOverrides = {};
      const id = await onlyBuildOf();
      await env.DB.prepare("UPDATE builds SET updated_at = ?1 WHERE tenant_id = ?2 AND id = ?3").bind(new Date(Date.now() - 3_600_000).toISOString(), tenant, id).run();
      expect(await poll(id)).toMatchObject({ state: "failed", error: { code: "build_lost" } });
    });
  });

  describe("cancel", () => {
    it.each(["queued", "encoding"] as const)("cancels a %s build: stops the worker's job, frees the index", async (state) => {
      const uploadId = await uploadDocs();
      const build = await (await postJson("/v1/indexes/docs/builds", { uploadId })).json<View>();
      jobState = state;
      await poll(build.id);
      const response = await cancel(build.id);
      expect(response.status).toBe(200);
      expect(await response.json<View>()).toMatchObject({ id: build.id, state: "cancelled", workerStopped: true, error: { code: "cancelled" } });
      expect(workerCalls("/cancel")).toHaveLength(1);
      expect(workerCalls("/cancel")[0]!.tenant).toBe(tenant);
      // Terminal: later polls do not ask the worker, a second cancel is 409, and the index builds again.
      jobState = "succeeded";
      expect(await poll(build.id)).toMatchObject({ state: "cancelled" });
      const again = await cancel(build.id);
      expect(again.status).toBe(409);
      expect((await again.json<{ error: { code: string } }>()).error.code).toBe("build_finished");
      const v1 = await env.DB.prepare("SELECT state FROM index_versions WHERE tenant_id = ?1 AND index_id = 'docs' AND version = 1").bind(tenant).first();
      expect(v1).toEqual({ state: "failed" });
      expect((await postJson("/v1/indexes/docs/builds", { uploadId })).status).toBe(202);
    });

    it("cancels even when the worker is unreachable, and says the worker was not stopped", async () => {
      const uploadId = await uploadDocs();
      const build = await (await postJson("/v1/indexes/docs/builds", { uploadId })).json<View>();
      for (const w of WORKERS) pool.behaviour.set(w, "down");
      expect(await (await cancel(build.id)).json<View>()).toMatchObject({ state: "cancelled", workerStopped: false });
    });

    it("409 for a finished build, 404 for an unknown one", async () => {
      const uploadId = await uploadDocs();
      const build = await (await postJson("/v1/indexes/docs/builds", { uploadId })).json<View>();
      jobState = "failed";
      await poll(build.id);
      expect((await cancel(build.id)).status).toBe(409);
      expect((await cancel("b000000000000000000000000")).status).toBe(404);
      expect(workerCalls("/cancel")).toHaveLength(0);
    });

    it("a cancel that lands while the dispatch is in flight wins, and the worker's new job is cancelled", async () => {
      const uploadId = await uploadDocs();
      pool.routes.set("POST /v1/builds", async (call) => {
        const cancelled = await cancel(await onlyBuildOf());
        expect(await cancelled.json<View>()).toMatchObject({ state: "cancelled", workerStopped: null });
        return Response.json(status(call.body as BuildRequest, "queued"), { status: 202 });
      });
      const response = await postJson("/v1/indexes/docs/builds", { uploadId });
      expect(await response.json<View>()).toMatchObject({ state: "cancelled" });
      expect(workerCalls("/cancel").map((c) => c.path)).toEqual(["/v1/builds/job-1/cancel"]);
    });
  });

  it("a tenant holds at most MAX_BUILDS_PER_TENANT builds in progress across its indexes", async () => {
    for (const index of ["docs2", "docs3"]) expect((await createIndex(env.DB, tenant, index)).ok).toBe(true);
    envOverrides = { MAX_BUILDS_PER_TENANT: "2" };
    const uploads = [await uploadDocs(true, "docs"), await uploadDocs(true, "docs2"), await uploadDocs(true, "docs3")];
    const first = await (await postJson("/v1/indexes/docs/builds", { uploadId: uploads[0] })).json<View>();
    expect((await postJson("/v1/indexes/docs2/builds", { uploadId: uploads[1] })).status).toBe(202);
    const third = await postJson("/v1/indexes/docs3/builds", { uploadId: uploads[2] });
    expect(third.status).toBe(429);
    expect(third.headers.get("retry-after")).toBe("30");
    const error = (await third.json<{ error: { code: string; message: string } }>()).error;
    expect(error).toMatchObject({ code: "tenant_build_limit" });
    expect(error.message).toContain("2 builds in progress");
    // The refused request left no version behind in the building state.
    const v = await env.DB.prepare("SELECT state FROM index_versions WHERE tenant_id = ?1 AND index_id = 'docs3'").bind(tenant).all();
    expect(v.results).toEqual([{ state: "failed" }]);
    // Another tenant is not affected, and a finished build frees a slot.
    expect((await cancel(first.id)).status).toBe(200);
    expect((await postJson("/v1/indexes/docs3/builds", { uploadId: uploads[2] })).status).toBe(202);
  });

  describe("a transient S3 error reading the manifest does not fail a build that succeeded", () => {
    const putManifest = () => client.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKey(tenant, "docs", 1), Body: JSON.stringify(manifest(tenant, "docs", 1)) }));

    it("retries with backoff within a poll", async () => {
      let failuresLeft = 2;
      let reads = 0;
      deps = {
        manifestBackoffMs: [10, 10],
        s3: (e) => {
          const real = s3For(e);
          const send = (command: unknown) => {
            if (command instanceof GetObjectCommand) {
              reads++;
              if (failuresLeft-- > 0) return Promise.reject(new S3ServiceException({ name: "ServiceUnavailable", $fault: "server", $metadata: { httpStatusCode: 503 }, message: "simulated" }));
            }
            return real.client.send(command as GetObjectCommand);
          };
          return { ...real, client: { send } as unknown as S3Client };
        },
      };
      const uploadId = await uploadDocs();
      const build = await (await postJson("/v1/indexes/docs/builds", { uploadId })).json<View>();
      await putManifest();
      jobState = "succeeded";
      expect(await poll(build.id)).toMatchObject({ state: "succeeded" });
      expect(reads).toBe(3);
    });

    it("an S3 that stays unreachable leaves the build open; the next poll completes it", async () => {
      const uploadId = await uploadDocs();
      const build = await (await postJson("/v1/indexes/docs/builds", { uploadId })).json<View>();
      await putManifest();
      jobState = "succeeded";
      deps = { manifestBackoffMs: [10, 10] };
      // Nothing listens on port 9: the real SDK's connection fails, as when radosgw is down.
      envOverrides = { S3_ENDPOINT: "http://127.0.0.1:9" };
      expect(await poll(build.id)).toMatchObject({ state: "writing" });
      envOverrides = {};
      expect(await poll(build.id)).toMatchObject({ state: "succeeded" });
      expect(await d1SearchCatalog(env.DB, tenant, "docs")).toEqual({ ok: true, active: { version: 1, shards: ["s0", "s1"], coveredSeq: 0, headSeq: 0 } });
    });
  });

  it.each([
    ["no uploadId", {}],
    ["a bad uploadId", { uploadId: "../x" }],
    ["an unknown option", { uploadId: "u000000000000000000000000", turbo: true }],
    ["degree out of range", { uploadId: "u000000000000000000000000", degree: 1 }],
  ])("400 for %s", async (_name, body) => {
    expect((await postJson("/v1/indexes/docs/builds", body)).status).toBe(400);
  });

  it("404 for an unknown upload, index or build", async () => {
    expect((await postJson("/v1/indexes/docs/builds", { uploadId: "u000000000000000000000000" })).status).toBe(404);
    expect((await postJson("/v1/indexes/nope/builds", { uploadId: "u000000000000000000000000" })).status).toBe(404);
    expect((await request("/v1/indexes/docs/builds/b000000000000000000000000")).status).toBe(404);
  });
});
