/**
 * Living indexes on the GPU worker, end to end over real HTTP: the real service (signed routes,
 * admission) on the real index backend, the tiny model (ONNX on CPU) and real S3 (radosgw):
 * POST /v1/wal (embed, create-if-absent, retries, conflicts, seals), /v1/search with a tail
 * (exact mode = brute force over exactly the live documents, scored with runtime.score),
 * /v1/documents/get and /v1/index-state, and 503 when S3 does not answer.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeFrames } from "../shared/api/frames.ts";
import type { DocumentAnswer, IndexStateAnswer, WalWriteAnswer } from "../shared/api/living-api.ts";
import { signRequest } from "../shared/api/signing.ts";
import type { Frame, Hit } from "../shared/api/worker-api.ts";
import { versionPrefix, walKey } from "../shared/index/keys.ts";
import { batchHash, decodeWalBatch } from "../shared/index/wal.ts";
import { createIndexBackend, type IndexBackendImpl } from "../gpu-worker/src/index/index-backend-impl.ts";
import { writeTinyCheckpoint } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../gpu-worker/src/model/import-checkpoint.ts";
import { HypencoderRuntime } from "../gpu-worker/src/model/runtime/runtime.ts";
import { createService, type ServiceSettings } from "../gpu-worker/src/service/app.ts";
import { listen, type RunningServer } from "../gpu-worker/src/service/http-server.ts";
import { createLogger } from "../gpu-worker/src/service/logger.ts";
import { createS3Client } from "../gpu-worker/src/store/s3-store.ts";
import { S3Store } from "../gpu-worker/src/store/s3-store.ts";
import { writeFixtureIndex } from "./support/index-fixture.ts";
import { freshBucket, objectExists, s3TestClient, s3TestEnv } from "./support/s3.ts";

const SECRET = "living-test-secret";
const QUERY = "graph search over document embeddings";
const TEXTS = [
  "a hypernetwork produces the weights of another network",
  "zebra crossings are painted on roads",
  "quantum computers use qubits",
  "an umbrella keeps the rain off",
  "graph search over document embeddings",
  "short",
  "documents are embedded once and searched many times",
  "the rain in spain stays mainly in the plain",
  "search engines rank documents for a query",
  "weights of a small network score each document",
];
const IDS = TEXTS.map((_, i) => `doc-${i}`);
const SETTINGS: ServiceSettings = {
  signingSecrets: [SECRET],
  insecureDev: false,
  queueMax: 64,
  concurrency: 8,
  batchMax: 16,
  batchWaitMs: 2,
  requestTimeoutMs: 60_000,
  maxBodyBytes: 8 * 2 ** 20 + 64 * 1024,
  maxPendingBodyBytes: 32 << 20,
  maxAnswerBytes: 4 << 20,
};
const logger = createLogger({ level: "silent" });

let root: string;
let runtime: HypencoderRuntime;
let bucket: string;
let store: S3Store;
let backend: IndexBackendImpl;
let server: RunningServer;

interface Upsert {
  id: string;
  text: string;
  [field: string]: unknown;
}

async function call(path: string, body: unknown, options: { tenant?: string; accept?: string; at?: RunningServer } = {}): Promise<Response> {
  const at = options.at ?? server;
  const bytes = new TextEncoder().encode(JSON.stringify(body));
  const headers: Record<string, string> = {
    "content-type": "application/json",
    ...(await signRequest({ secret: SECRET, method: "POST", host: new URL(at.url).host, path, tenant: options.tenant ?? "acme", body: bytes })),
  };
  if (options.accept) headers.accept = options.accept;
  return fetch(at.url + path, { method: "POST", headers, body: bytes });
}

async function ok<T>(response: Response): Promise<T> {
  const body = await response.json();
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body as T;
}

async function errorOf(response: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  return { status: response.status, ...body.error };
}

/** The edge's side of a write: the batch hash over the documents as the WAL stores them. */
function walBody(seq: number, upsert: Upsert[], del: string[] = [], extra: Record<string, unknown> = {}) {
  const docs = upsert.map(({ id, ...fields }) => ({ id, fields }));
  return { tenant: "acme", index: "docs", seq, batchHash: batchHash(docs, del), upsert, delete: del, ...extra };
}

const write = (body: ReturnType<typeof walBody>) => call("/v1/wal", body).then((r) => ok<WalWriteAnswer>(r));

/** Every live document's score, by scoring their embeddings directly (no index code involved). */
async function bruteForce(live: Map<string, { text: string; embedding: Float32Array }>): Promise<{ id: string; score: number; text: string }[]> {
  const [qnet] = await runtime.encodeQueries([QUERY]);
  const dim = runtime.manifest.embeddingDim;
  const entries = [...live];
  const matrix = new Float32Array(entries.length * dim);
  entries.forEach(([, d], i) => matrix.set(d.embedding, i * dim));
  const scores = await runtime.score(qnet!, matrix);
  return entries.map(([id, d], i) => ({ id, score: scores[i]!, text: d.text })).sort((a, b) => b.score - a.score);
}

async function searchHits(body: Record<string, unknown>): Promise<Hit[]> {
  const answer = await ok<{ hits: Hit[] }>(
    await call("/v1/search", { tenant: "acme", index: "docs", version: 1, query: QUERY, params: { mode: "exact", k: 100 }, fields: ["text"], ...body }),
  );
  return answer.hits;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "living-index-test-"));
  await writeTinyCheckpoint(join(root, "checkpoint"));
  await importCheckpoint(join(root, "checkpoint"), join(root, "model"));
  runtime = await HypencoderRuntime.load(join(root, "model"), { device: "cpu", intraOpThreads: 2 });
  bucket = await freshBucket("living-index");
  store = new S3Store({ client: await s3TestClient(), bucket, prefix: "indexes" });
  await writeFixtureIndex({
    store,
    prefix: versionPrefix("acme", "docs", 1),
    modelId: runtime.manifest.modelId,
    embeddings: await runtime.embedDocuments(TEXTS),
    dim: runtime.manifest.embeddingDim,
    ids: IDS,
    fields: TEXTS.map((text) => ({ text })),
    shardSizes: [5, 5],
    dtype: "float32",
  });
  backend = await createIndexBackend({ runtime, store, cacheDir: join(root, "cache"), cacheBudgetBytes: 1 << 30, preload: [], logger });
  server = await listen(createService({ runtime, backend, logger, settings: SETTINGS }).app.fetch, { port: 0, host: "127.0.0.1" });
}, 300_000);

afterAll(async () => {
  await server?.close(1000);
  await backend?.close();
  await runtime?.close();
  await rm(root, { recursive: true, force: true });
});

describe("POST /v1/wal", () => {
  it("embeds the upserts and writes the batch once: a retry finds it, another batch under its seq is a conflict", async () => {
    const body = walBody(100, [{ id: "w1", text: "written by a test", title: "T" }], ["gone"]);
    const first = await write(body);
    expect(first).toEqual({ seq: 100, batchHash: body.batchHash, upserted: 1, deleted: 1, bytes: expect.any(Number), existed: false });
    const key = `indexes/${walKey("acme", "docs", 100)}`;
    expect(await objectExists(bucket, key)).toBe(true);
    const stored = decodeWalBatch(await store.get(walKey("acme", "docs", 100)));
    expect(stored).toMatchObject({ seq: 100, modelId: runtime.manifest.modelId, upsert: [{ id: "w1", fields: { text: "written by a test", title: "T" } }], delete: ["gone"] });
    const embedded = await runtime.embedDocuments(["written by a test"]);
    Array.from(embedded).forEach((v, i) => expect(stored.embeddings[i]).toBeCloseTo(v, 5));

    expect(await write(body)).toEqual({ ...first, existed: true });
    const other = walBody(100, [{ id: "w1", text: "another text" }]);
    expect(await errorOf(await call("/v1/wal", other))).toMatchObject({ status: 409, code: "wal_conflict" });
    // A seal that lost to the real batch answers the real batch's hash.
    const seal = walBody(100, [], [], { seal: true });
    expect(await write(seal)).toMatchObject({ seq: 100, batchHash: body.batchHash, existed: true, upserted: 1 });
    expect(decodeWalBatch(await store.get(walKey("acme", "docs", 100))).batchHash).toBe(body.batchHash);
  });

  it("seals a free seq with an empty batch, which the late real batch then cannot replace", async () => {
    const seal = walBody(101, [], [], { seal: true });
    expect(await write(seal)).toMatchObject({ seq: 101, batchHash: batchHash([], []), upserted: 0, deleted: 0, existed: false });
    expect(await errorOf(await call("/v1/wal", walBody(101, [{ id: "late", text: "too late" }])))).toMatchObject({ status: 409, code: "wal_conflict" });
    expect(await errorOf(await call("/v1/wal", { ...walBody(102, [{ id: "x", text: "y" }]), seal: true }))).toMatchObject({ status: 400, code: "batch_hash_mismatch" });
  });

  it("refuses a batch whose hash is not the hash of what it carries, and writes nothing", async () => {
    const body = { ...walBody(103, [{ id: "w", text: "text" }]), batchHash: "0".repeat(64) };
    expect(await errorOf(await call("/v1/wal", body))).toMatchObject({ status: 400, code: "batch_hash_mismatch" });
    expect(await objectExists(bucket, `indexes/${walKey("acme", "docs", 103)}`)).toBe(false);
    expect(await errorOf(await call("/v1/wal", walBody(104, [{ id: "w", text: "text" }]), { tenant: "other" }))).toMatchObject({ status: 403 });
    expect(await errorOf(await call("/v1/wal", { ...walBody(104, []), upsert: [{ id: "w", text: "  " }] }))).toMatchObject({ status: 400, code: "invalid_request" });
  });

  it("answers 503 storage_unavailable, with Retry-After, when S3 does not answer", async () => {
    const { config } = await s3TestEnv();
    const dead = new S3Store({ client: createS3Client({ ...config, endpoint: "http://127.0.0.1:9" }), bucket, prefix: "indexes" });
    const deadBackend = await createIndexBackend({ runtime, store: dead, cacheDir: join(root, "dead-cache"), cacheBudgetBytes: 1 << 20, preload: [], logger });
    const deadServer = await listen(createService({ runtime, backend: deadBackend, logger, settings: SETTINGS }).app.fetch, { port: 0, host: "127.0.0.1" });
    try {
      const response = await call("/v1/wal", walBody(1, [{ id: "w", text: "text" }]), { at: deadServer });
      expect(response.headers.get("retry-after")).toBe("5");
      const error = await errorOf(response);
      expect(error).toMatchObject({ status: 503, code: "storage_unavailable" });
      expect(error.message).not.toContain("127.0.0.1");
    } finally {
      await deadServer.close(1000);
      await deadBackend.close();
    }
  });
});

describe("search, documents and state with a tail", () => {
  // Version 1 is doc-0..9 (coveredSeq 0). The tail (index "docs", seqs 1-3; seq 100+ above are other tests'):
  //   1: upsert fresh (new) and doc-3 (replaced);  2: delete doc-5 and fresh;  3: upsert fresh again.
  const live = new Map<string, { text: string; embedding: Float32Array }>();
  const embed = async (text: string) => (await runtime.embedDocuments([text])).slice();

  beforeAll(async () => {
    const all = await runtime.embedDocuments(TEXTS);
    const dim = runtime.manifest.embeddingDim;
    IDS.forEach((id, i) => live.set(id, { text: TEXTS[i]!, embedding: all.slice(i * dim, (i + 1) * dim) }));
  });

  const expectExact = async (toSeq: number) => {
    const hits = await searchHits({ tail: { fromSeq: 0, toSeq } });
    const expected = await bruteForce(live);
    expect(hits.map((h) => h.id), `toSeq ${toSeq}`).toEqual(expected.map((e) => e.id));
    hits.forEach((h, i) => {
      expect(h.score).toBeCloseTo(expected[i]!.score, 4);
      expect(h.fields).toEqual({ text: expected[i]!.text });
    });
    return hits;
  };

  it("sees an upsert, only the new version of a replaced document, hides a delete, and shows a re-upsert", async () => {
    await expectExact(0);
    await write(walBody(1, [{ id: "fresh", text: "a brand new document about graph search" }, { id: "doc-3", text: "replaced text about umbrellas" }]));
    live.set("fresh", { text: "a brand new document about graph search", embedding: await embed("a brand new document about graph search") });
    live.set("doc-3", { text: "replaced text about umbrellas", embedding: await embed("replaced text about umbrellas") });
    const afterUpsert = await expectExact(1);
    expect(afterUpsert.map((h) => h.id)).toContain("fresh");
    expect(afterUpsert.filter((h) => h.id === "doc-3")).toEqual([expect.objectContaining({ fields: { text: "replaced text about umbrellas" } })]);
    // Without a tail the version alone answers (eventual consistency).
    expect((await searchHits({})).map((h) => h.id)).not.toContain("fresh");

    await write(walBody(2, [], ["doc-5", "fresh"]));
    live.delete("doc-5");
    live.delete("fresh");
    const afterDelete = await expectExact(2);
    expect(afterDelete.map((h) => h.id)).not.toContain("doc-5");

    await write(walBody(3, [{ id: "fresh", text: "fresh again" }]));
    live.set("fresh", { text: "fresh again", embedding: await embed("fresh again") });
    await expectExact(3);
  });

  it("approx mode never returns a hidden document, and streams the tail's progress", async () => {
    const response = await call(
      "/v1/search",
      { tenant: "acme", index: "docs", version: 1, tail: { fromSeq: 0, toSeq: 3 }, query: QUERY, params: { mode: "approx", k: 5, entryPoints: 2, maxIter: 8 } },
      { accept: "application/msgpack" },
    );
    const frames: Frame[] = [];
    for await (const frame of decodeFrames(response.body!)) frames.push(frame);
    const result = frames.at(-1) as Frame & { type: "result"; hits: Hit[] };
    expect(result.type).toBe("result");
    for (const hit of result.hits) expect(live.has(hit.id), hit.id).toBe(true);
    expect(frames.some((f) => f.type === "progress" && f.shard === "tail" && f.iteration === 1)).toBe(true);
  });

  it("reads documents by id: the tail's newest write first, then the segments; deleted is 404", async () => {
    const get = (id: string, toSeq = 3) => call("/v1/documents/get", { tenant: "acme", index: "docs", version: 1, tail: { fromSeq: 0, toSeq }, id });
    expect(await ok<DocumentAnswer>(await get("fresh"))).toEqual({ id: "fresh", fields: { text: "fresh again" } });
    expect(await ok<DocumentAnswer>(await get("doc-3"))).toEqual({ id: "doc-3", fields: { text: "replaced text about umbrellas" } });
    expect(await ok<DocumentAnswer>(await get("doc-4"))).toEqual({ id: "doc-4", fields: { text: TEXTS[4] } });
    expect(await errorOf(await get("doc-5"))).toMatchObject({ status: 404, code: "document_not_found" });
    expect(await errorOf(await get("never"))).toMatchObject({ status: 404, code: "document_not_found" });
    expect(await ok<DocumentAnswer>(await get("doc-5", 1))).toEqual({ id: "doc-5", fields: { text: TEXTS[5] } });
  });

  it("counts live documents in /v1/index-state", async () => {
    const state = await ok<IndexStateAnswer>(await call("/v1/index-state", { tenant: "acme", index: "docs", version: 1, tail: { fromSeq: 0, toSeq: 3 } }));
    expect(state).toEqual({
      docCount: live.size,
      pendingDocs: 2,
      segments: [
        { id: "s0", docCount: 5, deletedDocs: 1 },
        { id: "s1", docCount: 5, deletedDocs: 1 },
      ],
      coveredSeq: 0,
      tailBatches: 3,
    });
  });

  it("searches and reads an index that was never built (version 0) from its tail alone", async () => {
    const body = (seq: number, upsert: Upsert[], del: string[] = []) => ({ ...walBody(seq, upsert, del), index: "blank" });
    await write(body(1, [{ id: "b1", text: "graph search over document embeddings" }, { id: "b2", text: "zebra" }]));
    await write(body(2, [], ["b2"]));
    const search = (tail?: { fromSeq: number; toSeq: number }) =>
      call("/v1/search", { tenant: "acme", index: "blank", version: 0, ...(tail ? { tail } : {}), query: QUERY, params: { mode: "exact", k: 10 }, fields: ["text", "nope"] });
    const hits = (await ok<{ hits: Hit[] }>(await search({ fromSeq: 0, toSeq: 2 }))).hits;
    expect(hits.map((h) => [h.id, h.fields])).toEqual([["b1", { text: "graph search over document embeddings" }]]);
    expect((await ok<{ hits: Hit[] }>(await search())).hits).toEqual([]);
    const doc = await call("/v1/documents/get", { tenant: "acme", index: "blank", version: 0, tail: { fromSeq: 0, toSeq: 2 }, id: "b1" });
    expect(await ok<DocumentAnswer>(doc)).toEqual({ id: "b1", fields: { text: "graph search over document embeddings" } });
    const state = await call("/v1/index-state", { tenant: "acme", index: "blank", version: 0, tail: { fromSeq: 0, toSeq: 2 } });
    expect(await ok<IndexStateAnswer>(state)).toEqual({ docCount: 1, pendingDocs: 1, segments: [], coveredSeq: 0, tailBatches: 2 });
    expect(backend.metrics().wal_cache_bytes).toBeGreaterThan(0);
  });
});
