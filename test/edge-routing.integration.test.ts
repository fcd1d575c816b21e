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
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRequest } from "../shared/api/signing.ts";
import { manifestKey } from "../shared/index/keys.ts";
import { scoreQNet } from "../shared/qnet/evaluate.ts";
import { decodeQNet } from "../shared/qnet/wire.ts";
import type { RunningWorker } from "../infra/dev/stack.ts";
import { createS3Client } from "../gpu-worker/src/store/s3-store.ts";
import { ProductStack } from "./support/product-stack.ts";
import { s3TestEnv } from "./support/s3.ts";

const SECRET = "integration-signing-secret";
const ADMIN = "integration-admin-token";
// Padded so that 64 KiB shards split the corpus into exactly 6 shards over 3 workers (the case).
const DOCS = Array.from({ length: 1500 }, (_, i) => ({
  id: `d${i}`,
  text: `document ${i} about ${["zebras", "quantum", "umbrellas", "graphs", "rain"][i % 5]} number ${i * 7}${" filler".repeat(10)}`,
}));

type SearchBody = { hits: Array<{ id: string; score: number }>; partial: boolean; missingShards: string[]; version: number; stats: { shardsSearched: number } };

describe("edge → GPU workers, real processes", () => {
  let product: ProductStack;
  let bucket: string;
  let edge: string;
  let key: string;
  let workers: readonly RunningWorker[] = [];

  beforeAll(async () => {
    product = await ProductStack.start({
      prefix: "edge-int",
      workers: 3,
      signingSecret: SECRET,
      adminToken: ADMIN,
      edgeVars: { WORKER_TIMEOUT_MS: "20000", RATE_LIMIT_PER_MINUTE: "0" },
      workerEnv: { DEVICE: "cpu" },
    });
    bucket = product.s3.bucket;
    edge = product.edgeUrl;
    workers = product.workers;
    const admin = product.admin();
    await admin.createTenant("acme", "Acme");
    key = await admin.createKey("acme", ["search", "manage"]);
  }, 300_000);

  afterAll(async () => {
    await product?.close();
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
    const headers = await signRequest({ secret: SECRET, method: "POST", host: new URL(alive.url).host, path: "/v1/search", tenant: "acme", body });
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
    expect(shards.length).toBe(6); // 6 shards over 3 workers
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

  it("streams progress before the last iteration ends: lines arrive over time, the first before the result", async () => {
    const params = "&k=5&mode=approx&maxIter=12&earlyStop=false&entryPoints=50&ncandidates=8&stream=true";
    const response = await api(`/v1/indexes/docs/search?q=${encodeURIComponent("quantum graphs in the rain")}${params}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
    // Each complete line with the time its last byte arrived.
    const arrivals: Array<{ at: number; frame: { type: string; iteration?: number; partial?: boolean } }> = [];
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let pending = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const at = performance.now();
      pending += value;
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line) arrivals.push({ at, frame: JSON.parse(line) });
      }
    }
    const progress = arrivals.filter((a) => a.frame.type === "progress");
    const result = arrivals.at(-1)!;
    expect(result.frame).toMatchObject({ type: "result", partial: false });
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(arrivals[0]!.frame.type).toBe("progress");
    expect(arrivals[0]!.at).toBeLessThan(result.at);
    expect(progress[0]!.frame.iteration!).toBeLessThan(progress.at(-1)!.frame.iteration!);
  }, 60_000);

  /** A signed JSON call straight to a live worker (no edge). */
  async function workerDirect(path: string, json: unknown): Promise<Response> {
    const body = new TextEncoder().encode(JSON.stringify(json));
    const alive = workers.find((w) => w.process.child.exitCode === null && w.process.child.signalCode === null)!;
    const headers = await signRequest({ secret: SECRET, method: "POST", host: new URL(alive.url).host, path, tenant: "acme", body });
    return fetch(`${alive.url}${path}`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
  }

  it("POST /v1/qnet answers the shared q-net wire format; it scores like the worker's, and /v1/rerank matches the worker's", async () => {
    const query = "zebras and umbrellas";
    const response = await api("/v1/qnet", { method: "POST", body: JSON.stringify({ query }) });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/msgpack");
    const qnet = decodeQNet(new Uint8Array(await response.arrayBuffer()));
    const direct = await workerDirect("/v1/qnet", { tenant: "acme", query });
    expect(direct.status).toBe(200);
    const reference = decodeQNet(new Uint8Array(await direct.arrayBuffer()));
    expect(qnet.dims).toEqual(reference.dims);
    // The same scoring function: equal scores on a few made-up embeddings.
    const dim = qnet.dims[0]!;
    const embeddings = Float32Array.from({ length: 3 * dim }, (_, i) => Math.sin(i * 0.37));
    const [ours, theirs] = [scoreQNet(qnet, embeddings), scoreQNet(reference, embeddings)];
    for (let i = 0; i < 3; i++) expect(ours[i]!).toBeCloseTo(theirs[i]!, 4);

    const documents = [{ id: "z", text: "zebras under umbrellas" }, { id: "q", text: "quantum graphs" }];
    const reranked = await api("/v1/rerank", { method: "POST", body: JSON.stringify({ query, documents }) });
    expect(reranked.status).toBe(200);
    const edgeScores = (await reranked.json()) as { scores: Array<{ id: string; score: number }>; missing: string[] };
    const workerScores = (await (await workerDirect("/v1/rerank", { tenant: "acme", query, documents })).json()) as typeof edgeScores;
    expect(edgeScores.missing).toEqual([]);
    expect(edgeScores.scores.map((s) => s.id)).toEqual(workerScores.scores.map((s) => s.id));
    edgeScores.scores.forEach((s, i) => expect(s.score).toBeCloseTo(workerScores.scores[i]!.score, 4));
  }, 60_000);

  it("POST /v1/rerank by ids scores known ids in the active version and lists unknown ones in missing", async () => {
    const response = await api("/v1/rerank", { method: "POST", body: JSON.stringify({ query: "zebras", index: "docs", ids: ["d0", "d3", "no-such-doc"] }) });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-index-version")).toBe(String(version));
    const body = (await response.json()) as { scores: Array<{ id: string; score: number }>; missing: string[] };
    expect(body.scores.map((s) => s.id).sort()).toEqual(["d0", "d3"]);
    for (const s of body.scores) expect(Number.isFinite(s.score)).toBe(true);
    expect(body.missing).toEqual(["no-such-doc"]);
  }, 60_000);

  it("a stopped worker's shards are served by their next owners; all stopped gives a 503 workers_unavailable", async () => {
    await workers[0]!.process.stop("SIGKILL");
    const { body } = await search("umbrellas and quantum");
    expect(body.partial).toBe(false);
    expect(body.hits.map((h) => h.id)).toEqual((await direct("umbrellas and quantum", shards, version)).map((h) => h.id));

    await workers[1]!.process.stop("SIGKILL");
    await workers[2]!.process.stop("SIGKILL");
    const none = await api(`/v1/indexes/docs/search?q=${encodeURIComponent("anything at all")}&k=10&mode=exact`);
    expect(none.status).toBe(503);
    expect(none.headers.get("retry-after")).toBe("2");
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe("workers_unavailable");
  }, 120_000);
});
