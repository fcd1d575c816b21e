/**
 * The whole path with real processes: the edge under `wrangler dev` (workerd, local D1, Cache API),
 * three GPU worker processes (gpu-worker/src/server.ts on the tiny random model, CPU) and the real
 * S3 of infra/s3 (radosgw). Through the edge's public API only: upload via presigned PUT → build on
 * a worker → poll until the version is active → search fanned out over the workers by rendezvous
 * hashing; then workers are stopped one by one to check failover and the `partial` flag.
 *
 * Slow (model import, three workers, wrangler): about a minute.
 */
import { CreateBucketCommand, GetObjectCommand } from "@aws-sdk/client-s3";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRequest } from "../shared/api/signing.ts";
import { manifestKey } from "../shared/index/keys.ts";
import { ensureDemoModel } from "../infra/dev/demo-model.ts";
import { type ManagedProcess, startProcess, stopAll, waitForHttp } from "../infra/dev/processes.ts";
import { createS3Client } from "../gpu-worker/src/store/s3-store.ts";
import { s3TestEnv } from "./support/s3.ts";

const REPO = join(import.meta.dirname, "..");
const SECRET = "integration-signing-secret";
const ADMIN = "integration-admin-token";
const DOCS = Array.from({ length: 1500 }, (_, i) => ({ id: `d${i}`, text: `document ${i} about ${["zebras", "quantum", "umbrellas", "graphs", "rain"][i % 5]} number ${i * 7}` }));

type SearchBody = { hits: Array<{ id: string; score: number }>; partial: boolean; missingShards: string[]; version: number; stats: { shardsSearched: number } };

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const quiet = (name: string) => (line: string) => {
  if (process.env.INTEGRATION_VERBOSE) process.stderr.write(`[${name}] ${line}\n`);
};

describe("edge → GPU workers, real processes", () => {
  let dir: string;
  let bucket: string;
  let edge: string;
  let key: string;
  const workers: Array<{ url: string; process: ManagedProcess }> = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "edge-routing-"));
    const s3 = await s3TestEnv();
    bucket = `edge-int-${Date.now().toString(36)}`;
    const client = createS3Client(s3.config);
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    client.destroy();
    const modelDir = await ensureDemoModel(join(REPO, ".dev"), quiet("model"));

    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const worker = startProcess({
        name: `worker-${i}`,
        command: process.execPath,
        args: [join(REPO, "bin/run-ts.mjs"), join(REPO, "gpu-worker/src/server.ts")],
        env: {
          ...process.env,
          ...s3.env,
          S3_FORCE_PATH_STYLE: "true",
          PORT: String(port),
          HOST: "127.0.0.1",
          MODEL_DIR: modelDir,
          DEVICE: "cpu",
          HYP_SIGNING_SECRETS: SECRET,
          INDEX_STORE: `s3://${bucket}`,
          SHARD_CACHE_DIR: join(dir, `cache-${i}`),
          LOG_LEVEL: "warn",
        },
        onLine: quiet(`worker-${i}`),
      });
      workers.push({ url, process: worker });
    }

    const persist = join(dir, "wrangler");
    const wranglerEnv = { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" };
    await promisify(execFile)("npx", ["wrangler", "d1", "migrations", "apply", "hypencoder", "--local", "--persist-to", persist], { cwd: REPO, env: wranglerEnv });
    const edgePort = await freePort();
    edge = `http://127.0.0.1:${edgePort}`;
    const vars: Record<string, string> = {
      GPU_WORKERS: workers.map((w) => w.url).join(","),
      WORKER_SIGNING_SECRET: SECRET,
      WORKER_TIMEOUT_MS: "20000",
      ADMIN_TOKEN: ADMIN,
      RATE_LIMIT_PER_MINUTE: "0",
      S3_ENDPOINT: s3.env.S3_ENDPOINT!,
      S3_REGION: s3.env.S3_REGION ?? "us-east-1",
      S3_ACCESS_KEY_ID: s3.env.S3_ACCESS_KEY_ID!,
      S3_SECRET_ACCESS_KEY: s3.env.S3_SECRET_ACCESS_KEY!,
      S3_BUCKET: bucket,
    };
    const wrangler = startProcess({
      name: "edge",
      command: "npx",
      args: ["wrangler", "dev", "--port", String(edgePort), "--ip", "127.0.0.1", "--persist-to", persist, ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`])],
      cwd: REPO,
      env: wranglerEnv,
      onLine: quiet("edge"),
    });
    await Promise.all([...workers.map((w) => waitForHttp(`${w.url}/healthz`, 120_000, w.process)), waitForHttp(`${edge}/healthz`, 120_000, wrangler)]);

    const admin = (path: string, body: unknown) =>
      fetch(`${edge}${path}`, { method: "POST", headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await admin("/v1/admin/tenants", { id: "acme", name: "Acme" })).status).toBe(201);
    key = ((await (await admin("/v1/admin/tenants/acme/keys", { scopes: ["search", "manage"] })).json()) as { key: string }).key;
  }, 300_000);

  afterAll(async () => {
    await stopAll(5_000);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${edge}${path}`, { ...init, headers: { authorization: `Bearer ${key}`, ...(init.body ? { "content-type": "application/json" } : {}), ...init.headers } });
  const search = async (query: string, extra = "") => {
    const response = await api(`/v1/indexes/docs/search?q=${encodeURIComponent(query)}&k=10&mode=exact${extra}`);
    expect(response.status).toBe(200);
    return { response, body: (await response.json()) as SearchBody };
  };

  /** The same search on one worker over every shard: what the fan-out's merge must reproduce. */
  async function direct(query: string, shards: string[], version: number): Promise<SearchBody["hits"]> {
    const body = new TextEncoder().encode(
      JSON.stringify({ tenant: "acme", index: "docs", version, shards, query, params: { k: 10, mode: "exact" } }),
    );
    const alive = workers.find((w) => w.process.child.exitCode === null && w.process.child.signalCode === null)!;
    const headers = await signRequest({ secret: SECRET, method: "POST", path: "/v1/search", tenant: "acme", body });
    const response = await fetch(`${alive.url}/v1/search`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
    expect(response.status).toBe(200);
    return ((await response.json()) as SearchBody).hits;
  }

  let shards: string[] = [];
  let version = 0;

  it("uploads through a presigned URL, builds on a worker, and activates the version", async () => {
    expect((await api("/v1/indexes", { method: "POST", body: JSON.stringify({ id: "docs" }) })).status).toBe(201);
    const data = new TextEncoder().encode(DOCS.map((d) => JSON.stringify(d)).join("\n") + "\n");
    const upload = (await (await api("/v1/indexes/docs/uploads", { method: "POST", body: JSON.stringify({ files: [{ name: "docs.jsonl", bytes: data.length }] }) })).json()) as {
      id: string;
      files: Array<{ url: string; headers: Record<string, string> }>;
    };
    expect((await fetch(upload.files[0]!.url, { method: "PUT", headers: upload.files[0]!.headers, body: data })).status).toBe(200);

    const started = await api("/v1/indexes/docs/builds", { method: "POST", body: JSON.stringify({ uploadId: upload.id, degree: 8, shardBytes: 65_536 }) });
    expect(started.status).toBe(202);
    const build = (await started.json()) as { id: string; version: number; state: string };
    const deadline = Date.now() + 180_000;
    let state = build.state;
    while (state !== "succeeded" && state !== "failed" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      state = ((await (await api(`/v1/indexes/docs/builds/${build.id}`)).json()) as { state: string }).state;
    }
    expect(state).toBe("succeeded");
    const index = (await (await api("/v1/indexes/docs")).json()) as { activeVersion: number };
    expect(index.activeVersion).toBe(build.version);
    version = build.version;
    // The shard list, from the manifest the worker wrote last.
    const client = createS3Client((await s3TestEnv()).config);
    const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey("acme", "docs", version) }));
    shards = (JSON.parse(await object.Body!.transformToString()) as { shards: Array<{ id: string }> }).shards.map((s) => s.id);
    client.destroy();
  }, 240_000);

  it("fans out over the workers and merges the same top-k one worker finds over all shards", async () => {
    const { response, body } = await search("zebras in the rain");
    expect(response.headers.get("x-cache")).toBe("MISS");
    expect(body.partial).toBe(false);
    expect(body.version).toBe(version);
    expect(body.hits).toHaveLength(10);
    expect(shards.length).toBeGreaterThan(1); // the corpus was built into several shards
    expect(body.stats.shardsSearched).toBe(shards.length);
    const reference = await direct("zebras in the rain", shards, version);
    expect(body.hits.map((h) => h.id)).toEqual(reference.map((h) => h.id));
    // Cached after the first complete answer.
    expect((await search("  zebras   in the rain ")).response.headers.get("x-cache")).toBe("HIT");
  }, 60_000);

  it("streams NDJSON: progress lines, then the result", async () => {
    const response = await api(`/v1/indexes/docs/search?q=graphs&k=5&stream=true`);
    expect(response.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
    const lines = (await response.text()).trim().split("\n").map((l) => JSON.parse(l) as { type: string; partial?: boolean });
    expect(lines.at(-1)).toMatchObject({ type: "result", partial: false });
  }, 60_000);

  it("a stopped worker's shards are served by their next owners; all stopped gives a flagged partial answer", async () => {
    await workers[0]!.process.stop("SIGKILL");
    const { body } = await search("umbrellas and quantum");
    expect(body.partial).toBe(false);
    expect(body.hits.map((h) => h.id)).toEqual((await direct("umbrellas and quantum", shards, version)).map((h) => h.id));

    await workers[1]!.process.stop("SIGKILL");
    await workers[2]!.process.stop("SIGKILL");
    const { body: none } = await search("anything at all");
    expect(none).toMatchObject({ partial: true, hits: [] });
    expect([...none.missingShards].sort()).toEqual([...shards].sort());
  }, 120_000);
});
