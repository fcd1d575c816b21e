/**
 * Builds end to end at the edge: real D1 (migrated schema), real S3 (radosgw: uploads, HEAD checks,
 * manifests), and the fake worker pool for the GPU side (edge/test/fake-workers.ts).
 */
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { createExecutionContext, env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import type { BuildRequest, BuildState, BuildStatus } from "../../../shared/api/worker-api.ts";
import { manifestKey } from "../../../shared/index/keys.ts";
import { fakeWorkerPool } from "../../test/fake-workers.ts";
import { seedIndex, stubAuth, testApp } from "../../test/route-harness.ts";
import { ownersFor } from "../routing/rendezvous.ts";
import { parseWorkerPool } from "../routing/worker-pool.ts";
import { d1SearchCatalog } from "../search/catalog.ts";
import { createUploadRoutes } from "../uploads/routes.ts";
import { freshBucket, hexDigest } from "../../test/s3.ts";
import { createBuildRoutes } from "./routes.ts";

const SECRET = (env as unknown as { WORKER_SIGNING_SECRET: string }).WORKER_SIGNING_SECRET;
const WORKERS = parseWorkerPool((env as unknown as { GPU_WORKERS: string }).GPU_WORKERS);
type View = { id: string; version: number; state: string; progress: Record<string, number>; error?: { code: string; message: string }; workerReachable?: boolean };

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
    jobState = "encoding";
    jobError = undefined;
    let lastRequest: BuildRequest | undefined;
    pool.routes.set("POST /v1/builds", (call) => {
      lastRequest = call.body as BuildRequest;
      return Response.json(status(lastRequest, "queued"), { status: 202 });
    });
    pool.routes.set("GET /v1/builds/:id", () => Response.json(status(lastRequest!, jobState)));
  });

  const app = () => {
    const auth = stubAuth(() => tenant);
    const a = testApp(createBuildRoutes({ fetcher: pool.fetcher, auth: { manage: auth, read: auth } }));
    a.route("/v1/indexes", createUploadRoutes({ auth }));
    return a;
  };
  const request = (path: string, init?: RequestInit) => app().request(path, init, { ...env, S3_BUCKET: bucket }, createExecutionContext());
  const postJson = (path: string, body: unknown) => request(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

  /** Upload `data` as docs.jsonl through the presigned URL; returns the upload id. */
  async function uploadDocs(put = true): Promise<string> {
    const response = await postJson("/v1/indexes/docs/uploads", { files: [{ name: "docs.jsonl", bytes: data.length, md5: await hexDigest("MD5", data) }] });
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
    expect(await d1SearchCatalog(env.DB, tenant, "docs")).toEqual({ ok: true, active: { version: 1, shards: ["s0", "s1"] } });
    const index = await env.DB.prepare("SELECT active_version, status, doc_count FROM indexes WHERE tenant_id = ?1 AND id = 'docs'").bind(tenant).first();
    expect(index).toEqual({ active_version: 1, status: "ready", doc_count: 3 });

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
    expect(await d1SearchCatalog(env.DB, tenant, "docs")).toEqual({ ok: true, active: { version: 1, shards: ["s0", "s1"] } });
    const v2 = await env.DB.prepare("SELECT state FROM index_versions WHERE tenant_id = ?1 AND index_id = 'docs' AND version = 2").bind(tenant).first();
    expect(v2).toEqual({ state: "failed" });
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
