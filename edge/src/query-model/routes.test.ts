import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { encodeFrame, FrameDecoder } from "../../../shared/api/frames.ts";
import type { Frame, RerankRequest } from "../../../shared/api/worker-api.ts";
import { concatBytes } from "../../../shared/bytes.ts";
import type { SearchCatalog } from "../search/catalog.ts";
import { type FakeCall, fakeWorkerPool } from "../../test/fake-workers.ts";
import { ownersFor } from "../routing/rendezvous.ts";
import { stubAuth, testApp } from "../../test/route-harness.ts";
import { parseWorkerPool } from "../routing/worker-pool.ts";
import { createQueryModelRoutes } from "./routes.ts";

const SECRET = (env as unknown as { WORKER_SIGNING_SECRET: string }).WORKER_SIGNING_SECRET;
const WORKERS = parseWorkerPool((env as unknown as { GPU_WORKERS: string }).GPU_WORKERS);
const OWNERS = ownersFor("acme/qnet", WORKERS);
const QNET_BYTES = new Uint8Array([0x82, 0xa1, 0x66, 0xa1, 0x71, 0xa1, 0x76, 0x01]);

const framesResponse = (...frames: Frame[]) => new Response(concatBytes(frames.map(encodeFrame)), { headers: { "content-type": "application/msgpack" } });

/** What a worker's rerank answers: texts score by length; ids starting with "x" are unknown. */
function rerankAnswer(call: FakeCall): Response {
  const request = call.body as RerankRequest;
  const ids = request.documents ? request.documents.map((d, i) => d.id ?? String(i)) : request.ids!.filter((id) => !id.startsWith("x"));
  const scores = ids.map((id, i) => ({ id, score: request.documents ? request.documents[i]!.text.length : id.length })).sort((a, b) => b.score - a.score);
  const missing = request.ids?.filter((id) => id.startsWith("x")) ?? [];
  return framesResponse(...(request.includeQNet ? [{ type: "qnet", qnet: QNET_BYTES } as Frame] : []), { type: "scores", scores, missing });
}

function setup() {
  const pool = fakeWorkerPool(SECRET);
  pool.routes.set("POST /v1/qnet", () => new Response(QNET_BYTES, { headers: { "content-type": "application/msgpack" } }));
  pool.routes.set("POST /v1/rerank", rerankAnswer);
  const catalog: SearchCatalog = async (_db, _tenant, index) => {
    if (index === "missing") return { ok: false, reason: "not_found" };
    if (index === "empty") return { ok: false, reason: "not_ready" };
    return { ok: true, active: { version: 7, shards: ["s0", "s1"], coveredSeq: 0, headSeq: 0 } };
  };
  const app = testApp(createQueryModelRoutes({ fetcher: pool.fetcher, catalog, auth: stubAuth("acme") }), "/v1");
  const call = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const ctx = createExecutionContext();
    const response = await app.request(path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) }, env, ctx);
    const bytes = new Uint8Array(await response.arrayBuffer());
    await waitOnExecutionContext(ctx);
    return { response, bytes, json: () => JSON.parse(new TextDecoder().decode(bytes)) };
  };
  return { pool, call };
}

describe("POST /v1/qnet", () => {
  it("asks the tenant's rendezvous owner, signed, with the key's tenant, and answers the q-net bytes", async () => {
    const { pool, call } = setup();
    const { response, bytes } = await call("/v1/qnet", { query: "what is a q-net", dtype: "float16" });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/msgpack");
    expect(bytes).toEqual(QNET_BYTES);
    expect(pool.calls).toHaveLength(1);
    expect(pool.calls[0]).toMatchObject({ worker: OWNERS[0], path: "/v1/qnet", tenant: "acme", body: { tenant: "acme", query: "what is a q-net", dtype: "float16" } });
  });

  it.each([
    ["a client-sent tenant", { query: "x", tenant: "acme" }],
    ["an empty query", { query: "  " }],
    ["an unknown dtype", { query: "x", dtype: "int8" }],
    ["a too small queryMaxLength", { query: "x", queryMaxLength: 1 }],
  ])("refuses %s without calling a worker", async (_name, body) => {
    const { pool, call } = setup();
    const { response, json } = await call("/v1/qnet", body);
    expect(response.status).toBe(400);
    expect(json().error.code).toBe("invalid_request");
    expect(pool.calls).toHaveLength(0);
  });

  it("fails over to the next owner when the first is down, times out or answers 500; 503 when none answers", async () => {
    for (const behaviour of ["down", "http500", "garbage"] as const) {
      const { pool, call } = setup();
      pool.behaviour.set(OWNERS[0]!, behaviour);
      if (behaviour === "garbage") pool.routes.set("POST /v1/qnet", (c) => (c.worker === OWNERS[0] ? new Response("{}", { headers: { "content-type": "application/json" } }) : new Response(QNET_BYTES, { headers: { "content-type": "application/msgpack" } })));
      const { response, bytes } = await call("/v1/qnet", { query: "x" });
      expect(response.status, behaviour).toBe(200);
      expect(bytes).toEqual(QNET_BYTES);
      expect(pool.calls.map((c) => c.worker)).toEqual(OWNERS.slice(0, 2));
    }
    const { pool, call } = setup();
    for (const w of WORKERS) pool.behaviour.set(w, "down");
    const { response, json } = await call("/v1/qnet", { query: "x" });
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("1");
    expect(json().error.code).toBe("workers_unavailable");
  });

  it("passes a worker's 400 on (no failover) and hides other refusals as 502", async () => {
    const { pool, call } = setup();
    pool.behaviour.set(OWNERS[0]!, "http400");
    const bad = await call("/v1/qnet", { query: "x" });
    expect(bad.response.status).toBe(400);
    expect(bad.json().error).toEqual({ code: "invalid_request", message: "query too long for the model" });
    expect(pool.calls).toHaveLength(1);
    pool.routes.set("POST /v1/qnet", () => Response.json({ error: { code: "forbidden", message: "secret detail" } }, { status: 403 }));
    pool.behaviour.set(OWNERS[0]!, "ok");
    const hidden = await call("/v1/qnet", { query: "x" });
    expect(hidden.response.status).toBe(502);
    expect(hidden.json().error.code).toBe("upstream_rejected");
  });
});

describe("POST /v1/rerank", () => {
  it("scores texts: JSON {scores, missing}, no index version involved", async () => {
    const { pool, call } = setup();
    const { response, json } = await call("/v1/rerank", { query: "q", documents: [{ id: "a", text: "short" }, { text: "a longer text" }] });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/application\/json/);
    expect(json()).toEqual({ scores: [{ id: "1", score: 13 }, { id: "a", score: 5 }], missing: [] });
    expect(pool.calls[0]).toMatchObject({ worker: OWNERS[0], path: "/v1/rerank", tenant: "acme" });
    expect(pool.calls[0]!.body).not.toHaveProperty("version");
  });

  it("by ids: resolves the active version, passes index+version, lists unknown ids in missing", async () => {
    const { pool, call } = setup();
    const { response, json } = await call("/v1/rerank", { query: "q", index: "docs", ids: ["d1", "xyz", "d22"] });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-index-version")).toBe("7");
    expect(json()).toEqual({ scores: [{ id: "d22", score: 3 }, { id: "d1", score: 2 }], missing: ["xyz"] });
    expect(pool.calls[0]!.body).toMatchObject({ tenant: "acme", index: "docs", version: 7, ids: ["d1", "xyz", "d22"] });
  });

  it.each([
    ["unknown index", { query: "q", index: "missing", ids: ["a"] }, 404],
    ["index without a version", { query: "q", index: "empty", ids: ["a"] }, 409],
    ["ids without index", { query: "q", ids: ["a"] }, 400],
    ["documents and ids", { query: "q", documents: [{ text: "t" }], index: "docs", ids: ["a"] }, 400],
    ["neither", { query: "q" }, 400],
    ["a client-sent version", { query: "q", index: "docs", ids: ["a"], version: 3 }, 400],
    ["a client-sent tenant", { query: "q", documents: [{ text: "t" }], tenant: "other" }, 400],
    ["too many documents", { query: "q", documents: Array.from({ length: 1001 }, () => ({ text: "t" })) }, 400],
    ["includeQNet without msgpack", { query: "q", documents: [{ text: "t" }], includeQNet: true }, 400],
  ])("refuses %s", async (_name, body, status) => {
    const { pool, call } = setup();
    const { response, json } = await call("/v1/rerank", body);
    expect(response.status).toBe(status);
    expect(json().error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
    expect(pool.calls).toHaveLength(0);
  });

  it("Accept: application/msgpack answers frames, the q-net frame first when includeQNet", async () => {
    const { call } = setup();
    const body = { query: "q", documents: [{ id: "a", text: "abc" }] };
    const plain = await call("/v1/rerank", body, { accept: "application/msgpack" });
    expect(plain.response.headers.get("content-type")).toBe("application/msgpack");
    expect(new FrameDecoder().push(plain.bytes)).toEqual([{ type: "scores", scores: [{ id: "a", score: 3 }], missing: [] }]);
    const withQNet = await call("/v1/rerank", { ...body, includeQNet: true }, { accept: "application/msgpack" });
    const frames = new FrameDecoder().push(withQNet.bytes);
    expect(frames.map((f) => f.type)).toEqual(["qnet", "scores"]);
    expect((frames[0] as { qnet: Uint8Array }).qnet).toEqual(QNET_BYTES);
  });

  it("fails over when the owner answers an error frame", async () => {
    const { pool, call } = setup();
    pool.routes.set("POST /v1/rerank", (c) => (c.worker === OWNERS[0] ? framesResponse({ type: "error", code: "shard_unavailable", message: "s3" }) : rerankAnswer(c)));
    const { response, json } = await call("/v1/rerank", { query: "q", index: "docs", ids: ["d1"] });
    expect(response.status).toBe(200);
    expect(json().scores).toEqual([{ id: "d1", score: 2 }]);
    expect(pool.calls.map((c) => c.worker)).toEqual(OWNERS.slice(0, 2));
  });
});
