/**
 * The GPU worker as it is deployed: a separate process (gpu-worker/src/server.ts) over a real S3
 * (radosgw). Uploads a JSONL file, builds through the signed API, polls to completion, searches in
 * JSON and msgpack, then kills the worker mid-search and restarts it: nothing published is lost.
 */
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeFrames } from "../shared/api/frames.ts";
import { signRequest } from "../shared/api/signing.ts";
import type { BuildStatus, Frame } from "../shared/api/worker-api.ts";
import { uploadPrefix } from "../shared/index/keys.ts";
import { writeTinyCheckpoint } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../gpu-worker/src/model/import-checkpoint.ts";
import { stopAll } from "../infra/dev/processes.ts";
import { type RunningWorker, startWorker } from "../infra/dev/stack.ts";
import { s3TestClient, testS3Settings } from "./support/s3.ts";

const SECRET = "worker-process-test-secret";
const TENANT = "acme";
const PORT = 18_481;

let root: string;
let modelDir: string;
let bucket: string;
let worker: RunningWorker;
let s3Settings: Parameters<typeof startWorker>[0]["s3"];

const DOCS = Array.from({ length: 120 }, (_, i) => ({
  id: `doc-${i}`,
  text: `document ${i} about ${["graphs", "networks", "search", "packages"][i % 4]} and ${["apples", "trains", "music"][i % 3]}`,
  title: `Title ${i}`,
}));

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, tenant = TENANT): Promise<Response> {
  const bytes = body === undefined ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(body));
  const signed = await signRequest({ secret: SECRET, method, host: new URL(worker.url).host, path, tenant, body: bytes });
  return fetch(`${worker.url}${path}`, {
    method,
    headers: { ...signed, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    ...(body === undefined ? {} : { body: bytes }),
  });
}

async function startTestWorker(): Promise<RunningWorker> {
  return startWorker({ name: "worker", port: PORT, modelDir, s3: s3Settings, signingSecret: SECRET, cacheDir: join(root, "cache") });
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "hypencoder-worker-process-"));
  await writeTinyCheckpoint(join(root, "checkpoint"), { seed: 21 });
  modelDir = join(root, "model");
  await importCheckpoint(join(root, "checkpoint"), modelDir);
  s3Settings = await testS3Settings("worker-process");
  bucket = s3Settings.bucket;
  const key = `${uploadPrefix(TENANT, "upload-1")}docs.jsonl`;
  const client = await s3TestClient();
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: DOCS.map((d) => JSON.stringify(d)).join("\n") }));
  client.destroy();
  worker = await startTestWorker();
});

afterAll(async () => {
  await stopAll(5_000);
  await rm(root, { recursive: true, force: true });
});

async function buildVersion(version: number): Promise<BuildStatus> {
  const started = await call("POST", "/v1/builds", {
    tenant: TENANT,
    index: "docs",
    version,
    inputs: [{ format: "jsonl", key: `${uploadPrefix(TENANT, "upload-1")}docs.jsonl` }],
    degree: 8,
    storeFields: ["text", "title"],
    shardBytes: 1 << 16,
  });
  expect(started.status, await started.clone().text()).toBe(202);
  const { jobId } = (await started.json()) as BuildStatus;
  for (;;) {
    const status = (await (await call("GET", `/v1/builds/${jobId}`)).json()) as BuildStatus;
    if (status.state === "succeeded" || status.state === "failed") return status;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const searchBody = (extra: Record<string, unknown> = {}) => ({
  tenant: TENANT,
  index: "docs",
  version: 1,
  query: "search networks",
  params: { k: 5, mode: "exact" },
  fields: ["title"],
  ...extra,
});

describe("worker process over real S3", () => {
  it("builds a version through the signed API, with progress, into several shards", async () => {
    const status = await buildVersion(1);
    expect(status.error).toBeUndefined();
    expect(status.state).toBe("succeeded");
    expect(status.progress.docsEncoded).toBe(DOCS.length);
    expect(status.progress.bytesWritten).toBeGreaterThan(0);
  });

  it("searches in JSON and in msgpack frames with the same hits", async () => {
    const json = await call("POST", "/v1/search", searchBody());
    expect(json.status).toBe(200);
    const result = (await json.json()) as { hits: Array<{ id: string; score: number; fields: { title: string } }>; partial: boolean };
    expect(result.hits).toHaveLength(5);
    expect(result.partial).toBe(false);
    expect(result.hits[0]!.fields.title).toBe(`Title ${result.hits[0]!.id.slice(4)}`);

    const packed = await call("POST", "/v1/search", searchBody(), { accept: "application/msgpack" });
    expect(packed.headers.get("content-type")).toContain("application/msgpack");
    const frames: Frame[] = [];
    for await (const frame of decodeFrames(packed.body!)) frames.push(frame);
    const last = frames.at(-1)!;
    expect(last.type).toBe("result");
    expect(last.type === "result" && last.hits).toEqual(result.hits);
  });

  it("refuses unsigned requests and other tenants' builds", async () => {
    const unsigned = await fetch(`${worker.url}/v1/search`, { method: "POST", body: JSON.stringify(searchBody()) });
    expect(unsigned.status).toBe(401);
    const otherTenant = await call("POST", "/v1/search", searchBody({ tenant: "other" }));
    expect(otherTenant.status).toBe(403);
  });

  it("survives a kill during a search: the published version still serves after a restart", async () => {
    const inFlight = call("POST", "/v1/search", searchBody({ params: { k: 5, mode: "exact" } })).then(
      (r) => r.status,
      () => "connection lost",
    );
    worker.process.kill("SIGKILL");
    await worker.process.exited;
    expect(["connection lost", 200]).toContain(await inFlight);

    worker = await startTestWorker();
    const again = await call("POST", "/v1/search", searchBody());
    expect(again.status).toBe(200);
    expect(((await again.json()) as { hits: unknown[] }).hits).toHaveLength(5);
  });

  it("a build killed mid-way publishes nothing, and the retry succeeds", async () => {
    const started = await call("POST", "/v1/builds", {
      tenant: TENANT,
      index: "docs",
      version: 2,
      inputs: [{ format: "jsonl", key: `${uploadPrefix(TENANT, "upload-1")}docs.jsonl` }],
      degree: 8,
    });
    expect(started.status).toBe(202);
    worker.process.kill("SIGKILL");
    await worker.process.exited;
    worker = await startTestWorker();

    const invisible = await call("POST", "/v1/search", searchBody({ version: 2 }));
    expect(invisible.status).toBe(404);
    expect((await buildVersion(2)).state).toBe("succeeded");
    const visible = await call("POST", "/v1/search", searchBody({ version: 2 }));
    expect(visible.status).toBe(200);
  });
});
