/**
 * The whole path with real processes: the edge under `wrangler dev` (workerd, local D1, Cache API),
 * three GPU worker processes (gpu-worker/src/server.ts on the tiny random model, CPU) and the real
 * S3 of infra/s3 (radosgw). Through the edge's public API only: upload via presigned PUT → build on
 * a worker → poll until the version is active → search fanned out over the workers by rendezvous
 * hashing; then workers are stopped one by one to check failover and the `partial` flag.
 *
 * Slow (model import, three workers, wrangler): about a minute.
 */
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRequest } from "../shared/api/signing.ts";
import { manifestKey } from "../shared/index/keys.ts";
import { ensureDemoModel } from "../infra/dev/demo-model.ts";
import { stopAll } from "../infra/dev/processes.ts";
import { PublicApi } from "../infra/dev/public-api.ts";
import { type RunningWorker, startStack } from "../infra/dev/stack.ts";
import { createS3Client } from "../gpu-worker/src/store/s3-store.ts";
import { s3TestEnv, testS3Settings } from "./support/s3.ts";

const SECRET = "integration-signing-secret";
const ADMIN = "integration-admin-token";
const DOCS = Array.from({ length: 1500 }, (_, i) => ({ id: `d${i}`, text: `document ${i} about ${["zebras", "quantum", "umbrellas", "graphs", "rain"][i % 5]} number ${i * 7}` }));

type SearchBody = { hits: Array<{ id: string; score: number }>; partial: boolean; missingShards: string[]; version: number; stats: { shardsSearched: number } };

const quiet = (name: string) => (line: string) => {
  if (process.env.INTEGRATION_VERBOSE) process.stderr.write(`[${name}] ${line}\n`);
};

describe("edge → GPU workers, real processes", () => {
  let dir: string;
  let bucket: string;
  let edge: string;
  let key: string;
  let workers: RunningWorker[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "edge-routing-"));
    const s3 = await testS3Settings("edge-int");
    bucket = s3.bucket;
    const modelDir = await ensureDemoModel(join(dir, "model"), quiet("model"));
    const stack = await startStack({
      dir,
      modelDir,
      s3,
      workers: 3,
      signingSecret: SECRET,
      adminToken: ADMIN,
      edgeVars: { WORKER_TIMEOUT_MS: "20000", RATE_LIMIT_PER_MINUTE: "0" },
      workerEnv: { DEVICE: "cpu" },
      onLine: quiet,
    });
    edge = stack.edge.url;
    workers = stack.workers;
    const admin = PublicApi.admin(edge, ADMIN);
    await admin.createTenant("acme", "Acme");
    key = await admin.createKey("acme", ["search", "manage"]);
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
