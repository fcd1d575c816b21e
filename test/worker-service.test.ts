/**
 * The GPU worker's HTTP service over real HTTP, with the real model runtime on the tiny checkpoint.
 * The index side is a small exhaustive in-test backend (scores every document with the prepared
 * q-net); end-to-end tests with the real index side live elsewhere.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Packr } from "msgpackr/index-no-eval";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { decodeFrames } from "../shared/api/frames.ts";
import { signRequest } from "../shared/api/signing.ts";
import type { BuildRequest, BuildStatus, Frame, Hit } from "../shared/api/worker-api.ts";
import type { DocumentAnswer, IndexStateAnswer, WalWriteAnswer } from "../shared/api/living-api.ts";
import { scoreQNet } from "../shared/qnet/evaluate.ts";
import { decodeQNet } from "../shared/qnet/wire.ts";
import { writeTinyCheckpoint } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../gpu-worker/src/model/import-checkpoint.ts";
import { queuedStatus } from "../gpu-worker/src/index/build/build-manager.ts";
import { HypencoderRuntime } from "../gpu-worker/src/model/runtime/runtime.ts";
import { createService, type Service, type ServiceSettings } from "../gpu-worker/src/service/app.ts";
import { listen, type RunningServer } from "../gpu-worker/src/service/http-server.ts";
import type { IndexBackend, IndexSearchInput, IndexSearchResult, StoredEmbeddings } from "../gpu-worker/src/index/index-backend.ts";
import { IndexNotFoundError } from "../gpu-worker/src/index/search-errors.ts";
import { createLogger } from "../gpu-worker/src/service/logger.ts";
import { warmUp } from "../gpu-worker/src/service/warm-up.ts";

const SECRET = "test-secret-7f3a9c";
const QUERY = "zebra crossing quantum umbrella";
const DOCS = [
  { id: "d0", text: "a hypernetwork produces the weights of another network" },
  { id: "d1", text: "zebra crossings are painted on roads" },
  { id: "d2", text: "quantum computers use qubits" },
  { id: "d3", text: "an umbrella keeps the rain off" },
  { id: "d4", text: "graph search over document embeddings" },
  { id: "d5", text: "short" },
];

let root: string;
let runtime: HypencoderRuntime;
let embeddings: Float32Array;
let dim: number;

/** Exhaustive scoring over DOCS, as the tenant "acme"'s index "docs" version 1, with two "shards". */
class TestBackend implements IndexBackend {
  delayMs = 0;
  readonly signals: AbortSignal[] = [];
  private readonly builds = new Map<string, BuildStatus>();

  async search(input: IndexSearchInput): Promise<IndexSearchResult> {
    this.signals.push(input.signal);
    if (input.tenant !== "acme" || input.index !== "docs" || input.version !== 1) {
      throw new IndexNotFoundError(`no index ${input.tenant}/${input.index}@${input.version}`);
    }
    if (this.delayMs > 0) await abortableDelay(this.delayMs, input.signal);
    const scores = await input.qnet.score(embeddings.slice());
    const hitsOf = (rows: number[]): Hit[] =>
      rows
        .map((r) => ({
          id: DOCS[r]!.id,
          score: scores[r]!,
          ...(input.fields.includes("text") ? { fields: { text: DOCS[r]!.text } } : {}),
        }))
        .sort((a, b) => b.score - a.score)
        .slice(0, input.params.k);
    const all = DOCS.map((_, r) => r);
    input.onProgress?.({ shard: "s0", iteration: 1, hits: hitsOf(all.slice(0, 3)) });
    input.onProgress?.({ shard: "s0", iteration: 2, hits: hitsOf(all) });
    return { hits: hitsOf(all), docsScored: DOCS.length, iterations: 2, shardsSearched: 1, missingShards: [] };
  }

  async embeddingsById(tenant: string, index: string, version: number, ids: string[]): Promise<StoredEmbeddings> {
    if (tenant !== "acme" || index !== "docs" || version !== 1) throw new IndexNotFoundError(`no index ${tenant}/${index}@${version}`);
    const found = ids.filter((id) => DOCS.some((d) => d.id === id));
    const rows = new Float32Array(found.length * dim);
    found.forEach((id, i) => {
      const r = DOCS.findIndex((d) => d.id === id);
      rows.set(embeddings.subarray(r * dim, (r + 1) * dim), i * dim);
    });
    return { ids: found, embeddings: rows, missing: ids.filter((id) => !found.includes(id)) };
  }

  startBuild(request: BuildRequest): BuildStatus {
    const status = queuedStatus(request, `job-${this.builds.size + 1}`);
    this.builds.set(status.jobId, status);
    return status;
  }

  getBuild(tenant: string, jobId: string): BuildStatus | undefined {
    const status = this.builds.get(jobId);
    return status?.tenant === tenant ? status : undefined;
  }

  cancelBuild(tenant: string, jobId: string): BuildStatus | undefined {
    const status = this.getBuild(tenant, jobId);
    if (status && status.state !== "succeeded" && status.state !== "failed") Object.assign(status, { state: "failed", error: { code: "cancelled", message: "the build was cancelled" } });
    return status;
  }

  // Living indexes: tested with the real backend in test/living-index.test.ts.
  async writeWal(): Promise<WalWriteAnswer> {
    throw new IndexNotFoundError("the test backend has no living indexes");
  }

  async getDocument(): Promise<DocumentAnswer> {
    throw new IndexNotFoundError("the test backend has no living indexes");
  }

  async indexState(): Promise<IndexStateAnswer> {
    throw new IndexNotFoundError("the test backend has no living indexes");
  }
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
}

interface Harness {
  service: Service;
  backend: TestBackend;
  server: RunningServer;
  logs: string[];
  close(): Promise<void>;
}

const DEFAULT_SETTINGS: ServiceSettings = {
  signingSecrets: ["old-secret", SECRET],
  insecureDev: false,
  queueMax: 64,
  concurrency: 32,
  batchMax: 16,
  batchWaitMs: 2,
  requestTimeoutMs: 30_000,
  maxBodyBytes: 1 << 20,
  maxPendingBodyBytes: 8 << 20,
  maxAnswerBytes: 4 << 20,
};

async function startHarness(settings: Partial<ServiceSettings> = {}): Promise<Harness> {
  const logs: string[] = [];
  const logger = createLogger({ level: "debug", destination: { write: (line: string) => void logs.push(line) } });
  const backend = new TestBackend();
  const service = createService({ runtime, backend, logger, settings: { ...DEFAULT_SETTINGS, ...settings } });
  const server = await listen(service.app.fetch, { port: 0, host: "127.0.0.1" });
  return { service, backend, server, logs, close: () => server.close(1000) };
}

interface CallOptions {
  method?: string;
  body?: unknown;
  rawBody?: Uint8Array;
  contentType?: string;
  accept?: string;
  tenant?: string;
  secret?: string;
  now?: number;
  /** The host to sign for; the harness's own by default. */
  host?: string;
  unsigned?: boolean;
  signal?: AbortSignal;
}

const packr = new Packr({ useRecords: false, moreTypes: true });

async function call(h: Harness, path: string, options: CallOptions = {}): Promise<Response> {
  const method = options.method ?? (options.body !== undefined || options.rawBody ? "POST" : "GET");
  const contentType = options.contentType ?? "application/json";
  const body =
    options.rawBody ??
    (options.body === undefined
      ? undefined
      : contentType === "application/msgpack"
        ? new Uint8Array(packr.pack(options.body))
        : new TextEncoder().encode(JSON.stringify(options.body)));
  const headers: Record<string, string> = {};
  if (body) headers["content-type"] = contentType;
  if (options.accept) headers.accept = options.accept;
  if (!options.unsigned) {
    Object.assign(
      headers,
      await signRequest({ secret: options.secret ?? SECRET, method, host: options.host ?? new URL(h.server.url).host, path, tenant: options.tenant ?? "acme", body, now: options.now }),
    );
  }
  return fetch(h.server.url + path, { method, headers, body, signal: options.signal });
}

const search = (extra: Record<string, unknown> = {}) => ({ tenant: "acme", index: "docs", version: 1, query: QUERY, ...extra });

async function frames(response: Response): Promise<Frame[]> {
  expect(response.headers.get("content-type")).toBe("application/msgpack");
  const out: Frame[] = [];
  for await (const frame of decodeFrames(response.body!)) out.push(frame);
  return out;
}

async function errorOf(response: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  return { status: response.status, ...body.error };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "hypencoder-service-test-"));
  await writeTinyCheckpoint(join(root, "checkpoint"));
  await importCheckpoint(join(root, "checkpoint"), join(root, "model"));
  runtime = await HypencoderRuntime.load(join(root, "model"), { device: "cpu", intraOpThreads: 2 });
  dim = runtime.manifest.embeddingDim;
  embeddings = await runtime.embedDocuments(DOCS.map((d) => d.text));
});

afterAll(async () => {
  await runtime?.close();
  await rm(root, { recursive: true, force: true });
});

describe("worker service", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it("serves health and metrics without a signature", async () => {
    const health = await fetch(`${h.server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, device: "cpu", queue: { running: 0, waiting: 0, limit: 64 } });
    expect((await fetch(`${h.server.url}/metrics`)).status).toBe(200);
  });

  it("warm-up loads every graph, so the device is known before traffic", async () => {
    await warmUp(runtime);
    expect([...runtime.devices.keys()].sort()).toEqual(["docEncoder", "qnetScorer", "qnetScorerFp16", "queryEncoder"]);
  });

  it("refuses unsigned, expired, wrongly signed and cross-tenant requests", async () => {
    expect(await errorOf(await call(h, "/v1/search", { body: search(), unsigned: true }))).toMatchObject({
      status: 401,
      code: "unauthorized",
      message: "missing header x-hyp-timestamp",
    });
    expect(await errorOf(await call(h, "/v1/search", { body: search(), now: Math.floor(Date.now() / 1000) - 120 }))).toMatchObject({
      status: 401,
      message: expect.stringContaining("expired"),
    });
    expect(await errorOf(await call(h, "/v1/search", { body: search(), secret: "not-the-secret" }))).toMatchObject({
      status: 401,
      message: "signature does not match",
    });
    // Signed for tenant "other", but the body asks for acme's index.
    expect(await errorOf(await call(h, "/v1/search", { body: search(), tenant: "other" }))).toMatchObject({ status: 403, code: "forbidden" });
    // A key from the rotation list still works.
    expect((await call(h, "/v1/search", { body: search(), secret: "old-secret" })).status).toBe(200);
  });

  it("refuses an unsigned request before reading its body: a declared 100 MiB body, 1 KiB sent, is a 401 at once", async () => {
    // A cap above the declared size (the old 128 MiB default): the refusal must come from the order, not the cap.
    const big = await startHarness({ maxBodyBytes: 128 << 20, maxPendingBodyBytes: 256 << 20 });
    const { port } = big.server;
    for (const framing of ["content-length: 104857600", "transfer-encoding: chunked"]) {
      const socket = connect(port, "127.0.0.1");
      const started = performance.now();
      const answer = new Promise<string>((resolve, reject) => {
        let text = "";
        socket.on("data", (chunk) => {
          text += chunk.toString("latin1");
          if (text.includes("\r\n\r\n")) resolve(text);
        });
        socket.on("error", reject);
        socket.on("close", () => resolve(text));
      });
      const kib = "x".repeat(1024);
      const chunk = framing.startsWith("transfer") ? `400\r\n${kib}\r\n` : kib;
      // The rest of the body never comes: a worker that waited for it would never answer.
      socket.write(`POST /v1/search HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\n${framing}\r\n\r\n${chunk}`);
      const head = await Promise.race([answer, new Promise<string>((resolve) => setTimeout(() => resolve("(no answer within 5 s)"), 5000))]);
      socket.destroy();
      expect(head.split("\r\n")[0], framing).toBe("HTTP/1.1 401 Unauthorized");
      expect(performance.now() - started).toBeLessThan(2000);
    }
    // The budget of unverified body bytes was given back: a signed request still works.
    expect(big.service.admission.pendingBodyBytes).toBe(0);
    expect((await call(big, "/v1/search", { body: search() })).status).toBe(200);
    await big.close();
  });

  it("refuses a request signed for another worker's host", async () => {
    const other = await startHarness();
    try {
      // Signed for `other`, sent to `h`: a captured request cannot be replayed against another worker.
      const response = await call(h, "/v1/search", { body: search(), host: new URL(other.server.url).host });
      expect(await errorOf(response)).toMatchObject({ status: 401, message: "signature does not match" });
      expect((await call(other, "/v1/search", { body: search() })).status).toBe(200);
    } finally {
      await other.close();
    }
  });

  it("refuses the same signed build request the second time", async () => {
    const body = new TextEncoder().encode(JSON.stringify({ tenant: "acme", index: "replayed", version: 1, inputs: [{ format: "jsonl", key: "in/a.jsonl" }] }));
    const path = "/v1/builds";
    const headers = { ...(await signRequest({ secret: SECRET, method: "POST", host: new URL(h.server.url).host, path, tenant: "acme", body })), "content-type": "application/json" };
    const send = () => fetch(h.server.url + path, { method: "POST", headers, body });
    expect((await send()).status).toBe(202);
    expect(await errorOf(await send())).toMatchObject({ status: 401, code: "unauthorized", message: expect.stringContaining("already used") });
    // Reads are not writes: the same signed search twice is answered twice.
    const searchBody = new TextEncoder().encode(JSON.stringify(search()));
    const searchHeaders = { ...(await signRequest({ secret: SECRET, method: "POST", host: new URL(h.server.url).host, path: "/v1/search", tenant: "acme", body: searchBody })), "content-type": "application/json" };
    for (let i = 0; i < 2; i++) expect((await fetch(`${h.server.url}/v1/search`, { method: "POST", headers: searchHeaders, body: searchBody })).status).toBe(200);
  });

  it("refuses an answer over MAX_ANSWER_BYTES with a 400 that says how to ask for less", async () => {
    const small = await startHarness({ maxAnswerBytes: 200 });
    try {
      const refused = await errorOf(await call(small, "/v1/search", { body: search({ params: { k: 6 }, fields: ["text"] }) }));
      expect(refused).toMatchObject({ status: 400, code: "answer_too_large", message: expect.stringContaining("ask for a smaller k or fewer fields") });
      // As frames, after progress frames: the stream ends with an answer_too_large error frame (the edge passes it on as a 400).
      const streamed = await frames(await call(small, "/v1/search", { body: search({ params: { k: 6 }, fields: ["text"] }), accept: "application/msgpack" }));
      expect(streamed.at(-1)).toMatchObject({ type: "error", code: "answer_too_large" });
      // Less is answered: fewer hits, or no fields.
      expect((await call(small, "/v1/search", { body: search({ params: { k: 1 }, fields: ["text"] }) })).status).toBe(200);
      expect((await call(small, "/v1/search", { body: search({ params: { k: 2 } }) })).status).toBe(200);
    } finally {
      await small.close();
    }
  });

  it("answers bad input with precise 4xx errors", async () => {
    const bad = async (options: CallOptions) => errorOf(await call(h, "/v1/search", options));
    expect(await bad({ body: { tenant: "acme", index: "docs", version: 1 } })).toMatchObject({ status: 400, message: expect.stringMatching(/^query: /) });
    expect(await bad({ body: search({ params: { k: 0 } }) })).toMatchObject({ status: 400, message: expect.stringMatching(/^params\.k: /) });
    expect(await bad({ body: search({ params: { k: 100_000 } }) })).toMatchObject({ status: 400, message: expect.stringMatching(/^params\.k: /) });
    expect(await bad({ body: search({ colour: "red" }) })).toMatchObject({ status: 400, message: expect.stringContaining("colour") });
    expect(await bad({ rawBody: new TextEncoder().encode("{not json") })).toMatchObject({ status: 400, code: "invalid_json" });
    expect(await bad({ rawBody: new Uint8Array([0x81, 0xc1]), contentType: "application/msgpack" })).toMatchObject({
      status: 400,
      code: "invalid_msgpack",
    });
    // The same invalid UTF-8 query text is refused as JSON and as msgpack (msgpackr alone would make it U+FFFD).
    const utf8 = (text: string) => [...new TextEncoder().encode(text)];
    expect(await bad({ rawBody: new Uint8Array([...utf8('{"tenant":"acme","index":"docs","version":1,"query":"a'), 0xff, ...utf8('b"}')]) })).toMatchObject({
      status: 400,
      code: "invalid_json",
    });
    const fixstr = (text: string) => [0xa0 | text.length, ...utf8(text)];
    const badQuery = [0x84, ...fixstr("tenant"), ...fixstr("acme"), ...fixstr("index"), ...fixstr("docs"), ...fixstr("version"), 0x01, ...fixstr("query"), 0xa3, 0x61, 0xff, 0x62];
    expect(await bad({ rawBody: new Uint8Array(badQuery), contentType: "application/msgpack" })).toMatchObject({
      status: 400,
      code: "invalid_msgpack",
      message: expect.stringContaining("not valid UTF-8"),
    });
    expect(await bad({ body: search(), contentType: "text/plain" })).toMatchObject({ status: 415, code: "unsupported_media_type" });
    expect(await bad({ body: search({ index: "missing" }) })).toMatchObject({ status: 404, code: "index_not_found" });
    // Within the schema's limit but beyond the tiny model's 128 positions: the runtime's ModelLimitError.
    expect(await bad({ body: search({ queryMaxLength: 200 }) })).toMatchObject({ status: 400, message: expect.stringContaining("position") });
    expect((await call(h, "/v1/nope", { body: {} })).status).toBe(404);
  });

  it("gives the same hits as JSON and as msgpack frames, and the q-net frame reproduces the scores", async () => {
    const json = await call(h, "/v1/search", { body: search({ params: { k: 4 }, fields: ["text"] }) });
    expect(json.status).toBe(200);
    const result = (await json.json()) as { hits: Hit[]; stats: { docsScored: number }; partial: boolean; missingShards: string[] };
    expect(result.hits).toHaveLength(4);
    expect(result).toMatchObject({ partial: false, missingShards: [], stats: { docsScored: DOCS.length } });
    expect(result.hits[0]!.fields).toHaveProperty("text");

    // A msgpack request body, asking for frames.
    const streamed = await frames(
      await call(h, "/v1/search", {
        body: search({ params: { k: 4 }, fields: ["text"], includeQNet: true }),
        contentType: "application/msgpack",
        accept: "application/msgpack",
      }),
    );
    const types = streamed.map((f) => f.type);
    expect(types[0]).toBe("qnet");
    expect(types.at(-1)).toBe("result");
    expect(types.slice(1, -1)).toEqual(["progress", "progress"]);
    const final = streamed.at(-1) as Extract<Frame, { type: "result" }>;
    expect(final.hits).toEqual(result.hits);

    const qnet = decodeQNet((streamed[0] as Extract<Frame, { type: "qnet" }>).qnet);
    const scores = scoreQNet(qnet, embeddings);
    for (const hit of final.hits) {
      const row = DOCS.findIndex((d) => d.id === hit.id);
      expect(Math.abs(scores[row]! - hit.score)).toBeLessThan(1e-4);
    }
  });

  it("reranks texts and stored ids, and serves q-nets", async () => {
    const texts = await call(h, "/v1/rerank", {
      body: { tenant: "acme", query: QUERY, documents: DOCS.slice(0, 3).map((d) => ({ text: d.text })) },
    });
    const { scores } = (await texts.json()) as { scores: Array<{ id: string; score: number }> };
    expect(scores.map((s) => s.id).sort()).toEqual(["0", "1", "2"]);
    expect(scores[0]!.score).toBeGreaterThanOrEqual(scores[2]!.score);

    const byId = await frames(
      await call(h, "/v1/rerank", {
        body: { tenant: "acme", query: QUERY, index: "docs", version: 1, ids: ["d2", "nope", "d0"], includeQNet: true },
        accept: "application/msgpack",
      }),
    );
    expect(byId.map((f) => f.type)).toEqual(["qnet", "scores"]);
    const scored = byId[1] as Extract<Frame, { type: "scores" }>;
    expect(scored.missing).toEqual(["nope"]);
    const qnet = decodeQNet((byId[0] as Extract<Frame, { type: "qnet" }>).qnet);
    const reference = scoreQNet(qnet, embeddings);
    for (const s of scored.scores) expect(Math.abs(reference[DOCS.findIndex((d) => d.id === s.id)]! - s.score)).toBeLessThan(1e-4);
    // Texts and stored embeddings of the same documents score alike.
    const d0Text = scores.find((s) => s.id === "0")!.score;
    expect(Math.abs(scored.scores.find((s) => s.id === "d0")!.score - d0Text)).toBeLessThan(1e-4);

    const qnetResponse = await call(h, "/v1/qnet", { body: { tenant: "acme", query: QUERY, dtype: "float16" } });
    expect(qnetResponse.headers.get("content-type")).toBe("application/msgpack");
    const half = decodeQNet(new Uint8Array(await qnetResponse.arrayBuffer()));
    const halfScores = scoreQNet(half, embeddings);
    expect(Math.abs(halfScores[0]! - reference[0]!)).toBeLessThan(0.05 * Math.max(1, Math.abs(reference[0]!)));
  });

  it("starts builds and shows each tenant only its own jobs", async () => {
    const started = await call(h, "/v1/builds", { body: { tenant: "acme", index: "docs", version: 2, inputs: [{ format: "jsonl", key: "in/a.jsonl" }] } });
    expect(started.status).toBe(202);
    const { jobId } = (await started.json()) as BuildStatus;
    expect((await call(h, `/v1/builds/${jobId}`)).status).toBe(200);
    expect(await errorOf(await call(h, `/v1/builds/${jobId}`, { tenant: "other" }))).toMatchObject({ status: 404, code: "build_not_found" });
    // Cancel is scoped by the signed tenant too.
    expect(await errorOf(await call(h, `/v1/builds/${jobId}/cancel`, { method: "POST", tenant: "other" }))).toMatchObject({ status: 404, code: "build_not_found" });
    const cancelled = await call(h, `/v1/builds/${jobId}/cancel`, { method: "POST" });
    expect(cancelled.status).toBe(200);
    expect(await cancelled.json()).toMatchObject({ jobId, state: "failed", error: { code: "cancelled" } });
  });

  it("batches concurrent query encodings", async () => {
    const b = await startHarness({ batchWaitMs: 50 });
    const spy = vi.spyOn(runtime, "prepareQueries");
    try {
      const responses = await Promise.all(
        Array.from({ length: 8 }, (_, i) => call(b, "/v1/search", { body: search({ query: `${QUERY} ${i}` }) })),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(8).fill(200));
      expect(spy.mock.calls.length).toBeLessThan(8);
      const metrics = await (await fetch(`${b.server.url}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`hyp_worker_encoder_calls_total ${spy.mock.calls.length}\\b`));
      expect(metrics).toContain("hyp_worker_encode_batch_size_sum 8");
    } finally {
      spy.mockRestore();
      await b.close();
    }
  });

  it("refuses with 503 and Retry-After when the queue is full", async () => {
    const b = await startHarness({ queueMax: 2, concurrency: 1 });
    b.backend.delayMs = 1000;
    try {
      const slow = [call(b, "/v1/search", { body: search() }), call(b, "/v1/search", { body: search() })];
      await vi.waitFor(() => expect(b.service.admission.stats).toMatchObject({ running: 1, waiting: 1 }));
      const refused = await call(b, "/v1/search", { body: search() });
      expect(refused.status).toBe(503);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect((await refused.json()) as unknown).toMatchObject({ error: { code: "overloaded" } });
      expect((await Promise.all(slow)).map((r) => r.status)).toEqual([200, 200]);
      expect(await (await fetch(`${b.server.url}/metrics`)).text()).toContain('hyp_worker_http_requests_total{route="/v1/search",method="POST",status="503"} 1');
    } finally {
      await b.close();
    }
  });

  it("times out with 504 and aborts the backend's work; a disconnecting client aborts it too", async () => {
    const b = await startHarness({ requestTimeoutMs: 200 });
    b.backend.delayMs = 10_000;
    try {
      const started = performance.now();
      expect(await errorOf(await call(b, "/v1/search", { body: search() }))).toMatchObject({ status: 504, code: "timeout" });
      expect(performance.now() - started).toBeLessThan(5000);
      expect(b.backend.signals[0]!.aborted).toBe(true);

    } finally {
      await b.close();
    }
    const c = await startHarness();
    c.backend.delayMs = 10_000;
    try {
      const client = new AbortController();
      const pending = call(c, "/v1/search", { body: search(), signal: client.signal }).catch((e: unknown) => e);
      await vi.waitFor(() => expect(c.backend.signals).toHaveLength(1));
      client.abort();
      await pending;
      await vi.waitFor(() => expect(c.backend.signals[0]!.aborted).toBe(true));
      await vi.waitFor(() => expect(c.service.admission.stats.running).toBe(0));
      // The aborted searches released their q-nets.
      await vi.waitFor(async () => expect((await runtime.threadStats()).qnets).toBe(0));
    } finally {
      await c.close();
    }
  });

  it("sends an error frame when a streamed request fails after its first frame", async () => {
    const b = await startHarness({ requestTimeoutMs: 300 });
    b.backend.delayMs = 10_000;
    try {
      const streamed = await frames(await call(b, "/v1/search", { body: search({ includeQNet: true }), accept: "application/msgpack" }));
      expect(streamed.map((f) => f.type)).toEqual(["qnet", "error"]);
      expect(streamed[1]).toMatchObject({ code: "timeout" });
    } finally {
      await b.close();
    }
  });

  it("exposes request counters and latency histograms by route and status", async () => {
    const text = await (await fetch(`${h.server.url}/metrics`)).text();
    expect(text).toMatch(/hyp_worker_http_requests_total\{route="\/v1\/search",method="POST",status="200"\} \d+/);
    expect(text).toMatch(/hyp_worker_http_requests_total\{route="\/v1\/search",method="POST",status="401"\} \d+/);
    expect(text).toMatch(/hyp_worker_http_requests_total\{route="\/v1\/builds\/:jobId",method="GET",status="404"\} 1/);
    expect(text).toContain("hyp_worker_http_request_seconds_bucket");
    expect(text).toContain("hyp_worker_queue_waiting 0");
    expect(text).toContain("hyp_worker_search_seconds_count");
    // prom-client's process metrics, beside the service's own (other services live in this process too).
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d+/m);
    expect(text).not.toContain("acme");
    expect(text).not.toContain(jobIdLike);
  });

  it("leaves no q-net in the inference thread after every request above, timed out and disconnected ones included", async () => {
    await vi.waitFor(async () => expect((await runtime.threadStats()).qnets).toBe(0));
  });

  it("logs requests without query text, document text or secrets", () => {
    const out = h.logs.join("");
    expect(out).toContain('"route":"/v1/search"');
    expect(out).toContain('"tenant":"acme"');
    for (const forbidden of [QUERY, "zebra", DOCS[1]!.text, SECRET, "old-secret"]) expect(out).not.toContain(forbidden);
  });
});

const jobIdLike = "job-1";
