import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { FrameDecoder } from "../../../shared/api/frames.ts";
import { type Frame, type SearchRequest } from "../../../shared/api/worker-api.ts";
import { fakeWorkerPool, shardHits } from "../../test/fake-workers.ts";
import { mergeTopK } from "../routing/merge.ts";
import { stubAuth, testApp } from "../../test/route-harness.ts";
import { parseWorkerPool } from "../routing/worker-pool.ts";
import type { SearchCatalog } from "./catalog.ts";
import { createSearchRoutes } from "./routes.ts";

const SECRET = (env as unknown as { WORKER_SIGNING_SECRET: string }).WORKER_SIGNING_SECRET;
const WORKERS = parseWorkerPool((env as unknown as { GPU_WORKERS: string }).GPU_WORKERS);
const SHARDS = ["s0", "s1", "s2", "s3", "s4"];

function setup(options: { versions?: Record<string, number>; tenant?: () => string; env?: Record<string, string> } = {}) {
  const pool = fakeWorkerPool(SECRET);
  const versions = options.versions ?? {};
  const catalog: SearchCatalog = async (_db, tenant, index) => {
    if (index === "missing") return { ok: false, reason: "not_found" };
    if (index === "empty") return { ok: false, reason: "not_ready" };
    return { ok: true, active: { version: versions[`${tenant}/${index}`] ?? 1, shards: SHARDS, coveredSeq: 0, headSeq: 0 } };
  };
  const app = testApp(createSearchRoutes({ fetcher: pool.fetcher, catalog, auth: stubAuth(options.tenant ?? "acme") }));
  const call = async (path: string, init?: RequestInit) => {
    const ctx = createExecutionContext();
    const response = await app.request(path, init, { ...env, ...options.env }, ctx);
    const body = await response.arrayBuffer();
    await waitOnExecutionContext(ctx); // the cache write (waitUntil) has landed
    return { response, bytes: new Uint8Array(body), json: () => JSON.parse(new TextDecoder().decode(body)) };
  };
  return { pool, call };
}

const unique = () => `query ${crypto.randomUUID()}`;
const post = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

describe("search route", () => {
  it("GET answers JSON with the merged top-k, signed per worker", async () => {
    const { pool, call } = setup();
    const { response, json } = await call(`/v1/indexes/docs/search?q=${encodeURIComponent(unique())}&k=4&fields=title,text`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/application\/json/);
    const body = json();
    expect(body.hits).toEqual(mergeTopK(SHARDS.map((s) => shardHits(s)), 4));
    expect(body).toMatchObject({ partial: false, missingShards: [], version: 1 });
    expect(body.type).toBeUndefined();
    const sent = pool.calls.map((c) => c.body as SearchRequest);
    expect(sent.flatMap((r) => r.shards).sort()).toEqual(SHARDS);
    expect(sent[0]).toMatchObject({ tenant: "acme", index: "docs", version: 1, fields: ["title", "text"], params: { k: 4, mode: "approx" } });
  });

  it("POST JSON and msgpack bodies take every option", async () => {
    const { pool, call } = setup();
    const options = { query: unique(), k: 3, mode: "exact", variant: "best-first", entryPoints: 50, ncandidates: 20, maxIter: 4, proxySeeds: 7, earlyStop: false, seed: 9, fields: ["title"] };
    const { response } = await call("/v1/indexes/docs/search", post(options));
    expect(response.status).toBe(200);
    expect((pool.calls[0]!.body as SearchRequest).params).toEqual({ k: 3, mode: "exact", variant: "best-first", entryPoints: 50, ncandidates: 20, maxIter: 4, proxySeeds: 7, earlyStop: false, seed: 9 });
    const { encodeFrame } = await import("../../../shared/api/frames.ts");
    const packed = encodeFrame({ ...options, query: unique() } as unknown as Frame);
    const mp = await call("/v1/indexes/docs/search", { method: "POST", headers: { "content-type": "application/msgpack" }, body: packed });
    expect(mp.response.status).toBe(200);
  });

  it.each([
    ["missing query", "/v1/indexes/docs/search", 400],
    ["empty query", "/v1/indexes/docs/search?q=%20%20", 400],
    ["oversized query", `/v1/indexes/docs/search?q=${"a".repeat(2001)}`, 400],
    ["k=0", "/v1/indexes/docs/search?q=x&k=0", 400],
    ["k=100000", "/v1/indexes/docs/search?q=x&k=100000", 400],
    ["k not a number", "/v1/indexes/docs/search?q=x&k=ten", 400],
    ["unknown option", "/v1/indexes/docs/search?q=x&foo=1", 400],
    ["bad mode", "/v1/indexes/docs/search?q=x&mode=fast", 400],
    ["bad variant", "/v1/indexes/docs/search?q=x&variant=greedy", 400],
    ["negative proxySeeds", "/v1/indexes/docs/search?q=x&proxySeeds=-1", 400],
    ["repeated option", "/v1/indexes/docs/search?q=x&k=1&k=2", 400],
    ["bad index id", "/v1/indexes/BAD!/search?q=x", 400],
    ["unknown index", "/v1/indexes/missing/search?q=x", 404],
    ["index without a version", "/v1/indexes/empty/search?q=x", 409],
  ])("GET refuses %s", async (_name, path, status) => {
    const { call, pool } = setup();
    const { response, json } = await call(path);
    expect(response.status).toBe(status);
    expect(json().error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
    expect(pool.calls).toHaveLength(0);
  });

  it.each([
    ["invalid JSON", { method: "POST", headers: { "content-type": "application/json" }, body: "{nope" }, 400, "invalid_json"],
    ["wrong content type", { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" }, 415, "unsupported_media_type"],
    ["invalid msgpack", { method: "POST", headers: { "content-type": "application/msgpack" }, body: new Uint8Array([0xc1]) }, 400, "invalid_msgpack"],
    ["truncated msgpack", { method: "POST", headers: { "content-type": "application/msgpack" }, body: new Uint8Array([0x81, 0xa5]) }, 400, "invalid_msgpack"],
    // The same invalid UTF-8 query text ("a\xffb") is refused in either encoding, not decoded to U+FFFD.
    ["invalid UTF-8 in JSON", { method: "POST", headers: { "content-type": "application/json" }, body: new Uint8Array([...new TextEncoder().encode('{"query":"a'), 0xff, ...new TextEncoder().encode('b"}')]) }, 400, "invalid_json"],
    ["invalid UTF-8 in a msgpack string", { method: "POST", headers: { "content-type": "application/msgpack" }, body: new Uint8Array([0x81, 0xa5, ...new TextEncoder().encode("query"), 0xa3, 0x61, 0xff, 0x62]) }, 400, "invalid_msgpack"],
    ["invalid UTF-8 in a msgpack str8 key", { method: "POST", headers: { "content-type": "application/msgpack" }, body: new Uint8Array([0x82, 0xa5, ...new TextEncoder().encode("query"), 0xa1, 0x61, 0xd9, 0x02, 0xc3, 0x28, 0x01]) }, 400, "invalid_msgpack"],
    ["unknown field", post({ query: "x", boost: 2 }), 400, "invalid_request"],
    ["k=100000", post({ query: "x", k: 100000 }), 400, "invalid_request"],
    ["non-integer k", post({ query: "x", k: 1.5 }), 400, "invalid_request"],
    ["too many fields", post({ query: "x", fields: Array.from({ length: 33 }, (_, i) => `f${i}`) }), 400, "invalid_request"],
    ["oversized body", post({ query: "x".repeat(70_000) }), 413, "payload_too_large"],
  ] as const)("POST refuses %s", async (_name, init, status, code) => {
    const { call } = setup();
    const { response, json } = await call("/v1/indexes/docs/search", init as RequestInit);
    expect(response.status).toBe(status);
    expect(json().error.code).toBe(code);
  });

  it("Accept: application/msgpack answers one result frame", async () => {
    const { call } = setup();
    const { response, bytes } = await call(`/v1/indexes/docs/search?q=${encodeURIComponent(unique())}&k=2`, { headers: { accept: "application/msgpack" } });
    expect(response.headers.get("content-type")).toBe("application/msgpack");
    const frames = new FrameDecoder().push(bytes);
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ type: "result", partial: false, hits: mergeTopK(SHARDS.map((s) => shardHits(s)), 2) });
  });

  it("stream=true sends NDJSON progress then the result; SSE when asked for", async () => {
    const { call } = setup();
    const nd = await call(`/v1/indexes/docs/search?q=${encodeURIComponent(unique())}&stream=true`);
    expect(nd.response.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
    const lines = new TextDecoder().decode(nd.bytes).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.slice(0, -1).every((l) => l.type === "progress")).toBe(true);
    expect(lines.filter((l) => l.type === "progress")).toHaveLength(SHARDS.length);
    expect(lines.at(-1)).toMatchObject({ type: "result", partial: false, version: 1 });

    const sse = await call(`/v1/indexes/docs/search?q=${encodeURIComponent(unique())}&stream=1`, { headers: { accept: "text/event-stream" } });
    expect(sse.response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const text = new TextDecoder().decode(sse.bytes);
    expect(text).toMatch(/^event: progress\ndata: \{/);
    expect(text).toMatch(/event: result\ndata: \{.*"partial":false.*\}\n\n$/);

    const mp = await call("/v1/indexes/docs/search", post({ query: unique(), stream: true }, { accept: "application/msgpack" }));
    const frames = new FrameDecoder().push(mp.bytes);
    expect(frames.at(-1)!.type).toBe("result");
    expect(frames.filter((f) => f.type === "progress")).toHaveLength(SHARDS.length);
  });

  it("a stream whose workers all fail ends with a workers_unavailable error frame, not silence or an empty result", async () => {
    const { call, pool } = setup();
    for (const w of WORKERS) pool.behaviour.set(w, "down");
    const nd = await call(`/v1/indexes/docs/search?q=x&stream=true`);
    const last = JSON.parse(new TextDecoder().decode(nd.bytes).trim().split("\n").at(-1)!);
    expect(last).toMatchObject({ type: "error", code: "workers_unavailable" });
  });

  it("no worker answering any shard is a 503 with Retry-After; some shards answered is a 200 partial", async () => {
    const { call, pool } = setup();
    for (const w of WORKERS) pool.behaviour.set(w, "down");
    const none = await call(`/v1/indexes/docs/search?q=${encodeURIComponent(unique())}`);
    expect(none.response.status).toBe(503);
    expect(none.response.headers.get("retry-after")).toBe("2");
    expect(none.json().error).toMatchObject({ code: "workers_unavailable" });
    for (const w of WORKERS) pool.behaviour.set(w, "loseShards");
    const some = await call(`/v1/indexes/docs/search?q=${encodeURIComponent(unique())}`);
    expect(some.response.status).toBe(200);
    expect(some.json().partial).toBe(true);
    expect(some.json().missingShards.length).toBeGreaterThan(0);
    expect(some.json().missingShards.length).toBeLessThan(SHARDS.length);
  });

  describe("per-tenant concurrency cap", () => {
    it("429s with Retry-After while the tenant's searches in flight fill the cap, per tenant, and frees slots when they end", async () => {
      let tenant = "acme";
      const { call, pool } = setup({ tenant: () => tenant, env: { SEARCH_CONCURRENCY_PER_TENANT: "2", WORKER_TIMEOUT_MS: "400" } });
      for (const w of WORKERS) pool.behaviour.set(w, "hang");
      tenant = `capped-${crypto.randomUUID().slice(0, 8)}`;
      const inFlight = [call(`/v1/indexes/docs/search?q=${unique()}`), call(`/v1/indexes/docs/search?q=${unique()}&stream=true`)];
      await new Promise((r) => setTimeout(r, 100));
      const refused = await call(`/v1/indexes/docs/search?q=${unique()}`);
      expect(refused.response.status).toBe(429);
      expect(refused.response.headers.get("retry-after")).toBe("1");
      expect(refused.json().error).toMatchObject({ code: "too_many_concurrent_searches" });
      const other = tenant;
      tenant = `other-${crypto.randomUUID().slice(0, 8)}`;
      pool.behaviour.clear();
      expect((await call(`/v1/indexes/docs/search?q=${unique()}`)).response.status).toBe(200);
      tenant = other;
      await Promise.all(inFlight);
      expect((await call(`/v1/indexes/docs/search?q=${unique()}`)).response.status).toBe(200);
    });

    it("a search costing more than the whole cap is a 400 naming the bound, not clamped", async () => {
      const { call } = setup({ tenant: () => `cost-${crypto.randomUUID().slice(0, 8)}`, env: { SEARCH_CONCURRENCY_PER_TENANT: "16" } });
      const expensive = await call(`/v1/indexes/docs/search?q=x&entryPoints=1000000`);
      expect(expensive.response.status).toBe(400);
      expect(expensive.json().error.code).toBe("search_too_expensive");
      expect(expensive.json().error.message).toContain("entryPoints + proxySeeds <= 160000");
      expect((await call(`/v1/indexes/docs/search?q=x&entryPoints=160000&proxySeeds=0&ncandidates=1024`)).response.status).toBe(200);
      // The proxy walk's seeds count as entry points.
      expect((await call(`/v1/indexes/docs/search?q=x&entryPoints=160000&ncandidates=1024`)).response.status).toBe(400);
    });
  });

  it("cancelling the client request cancels the upstream fetches (whole and streamed answers)", async () => {
    const { pool } = setup();
    for (const w of WORKERS) pool.behaviour.set(w, "hang");
    const app = testApp(
      createSearchRoutes({
        fetcher: pool.fetcher,
        catalog: async () => ({ ok: true, active: { version: 1, shards: SHARDS, coveredSeq: 0, headSeq: 0 } }),
        auth: stubAuth("acme"),
      }),
    );
    const client = new AbortController();
    const whole = app.request(new Request("http://edge.test/v1/indexes/docs/search?q=hang", { signal: client.signal }), undefined, env, createExecutionContext());
    await new Promise((r) => setTimeout(r, 50));
    expect(pool.calls.length).toBeGreaterThan(0);
    client.abort(new DOMException("client went away", "AbortError"));
    expect((await whole).status).toBe(499);
    expect(pool.calls.every((c) => c.aborted())).toBe(true);

    const before = pool.calls.length;
    const streamed = await app.request("/v1/indexes/docs/search?q=hang&stream=true", undefined, env, createExecutionContext());
    await new Promise((r) => setTimeout(r, 50));
    expect(pool.calls.length).toBeGreaterThan(before);
    await streamed.body!.cancel();
    expect(pool.calls.slice(before).every((c) => c.aborted())).toBe(true);
  });

  it("a worker's 400 is passed on; a stream turns it into an error frame", async () => {
    const { call, pool } = setup();
    for (const w of WORKERS) pool.behaviour.set(w, "http400");
    const whole = await call(`/v1/indexes/docs/search?q=x`);
    expect(whole.response.status).toBe(400);
    expect(whole.json().error.message).toMatch(/too long/);
    const nd = await call(`/v1/indexes/docs/search?q=x&stream=true`);
    expect(JSON.parse(new TextDecoder().decode(nd.bytes).trim())).toMatchObject({ type: "error", code: "invalid_request" });
  });
});

describe("result cache", () => {
  it("MISS then HIT for the same normalised query and options; no worker call on a hit", async () => {
    const { call, pool } = setup();
    const q = unique();
    const first = await call(`/v1/indexes/docs/search?q=${encodeURIComponent(q)}&k=3`);
    expect(first.response.headers.get("x-cache")).toBe("MISS");
    const calls = pool.calls.length;
    // Same query after normalisation: extra whitespace, JSON body instead of query string.
    const second = await call("/v1/indexes/docs/search", post({ query: `  ${q.replace(" ", "   ")} `, k: 3 }));
    expect(second.response.headers.get("x-cache")).toBe("HIT");
    expect(second.json()).toEqual(first.json());
    expect(pool.calls.length).toBe(calls);
    // Another k, or another format, is another entry.
    expect((await call(`/v1/indexes/docs/search?q=${encodeURIComponent(q)}&k=4`)).response.headers.get("x-cache")).toBe("MISS");
    const mp = await call(`/v1/indexes/docs/search?q=${encodeURIComponent(q)}&k=3`, { headers: { accept: "application/msgpack" } });
    expect(mp.response.headers.get("x-cache")).toBe("MISS");
    expect(mp.response.headers.get("content-type")).toBe("application/msgpack");
  });

  it("a new active version never serves the old version's entry", async () => {
    const versions: Record<string, number> = { "acme/docs": 1 };
    const { call } = setup({ versions });
    const path = `/v1/indexes/docs/search?q=${encodeURIComponent(unique())}`;
    expect((await call(path)).response.headers.get("x-cache")).toBe("MISS");
    expect((await call(path)).response.headers.get("x-cache")).toBe("HIT");
    versions["acme/docs"] = 2;
    const after = await call(path);
    expect(after.response.headers.get("x-cache")).toBe("MISS");
    expect(after.json().version).toBe(2);
  });

  it("one tenant never reads another's entry for the same index name and query", async () => {
    let tenant = "acme";
    const { call } = setup({ tenant: () => tenant });
    const path = `/v1/indexes/docs/search?q=${encodeURIComponent(unique())}`;
    await call(path);
    expect((await call(path)).response.headers.get("x-cache")).toBe("HIT");
    tenant = "globex";
    expect((await call(path)).response.headers.get("x-cache")).toBe("MISS");
  });

  it("partial answers and streams are not cached", async () => {
    const { call, pool } = setup();
    for (const w of WORKERS) pool.behaviour.set(w, "loseShards");
    const path = `/v1/indexes/docs/search?q=${encodeURIComponent(unique())}`;
    expect((await call(path)).json().partial).toBe(true);
    pool.behaviour.clear();
    const again = await call(path);
    expect(again.response.headers.get("x-cache")).toBe("MISS");
    expect(again.json().partial).toBe(false);
    const streamPath = `/v1/indexes/docs/search?q=${encodeURIComponent(unique())}&stream=true`;
    await call(streamPath);
    expect((await call(streamPath)).response.headers.get("x-cache")).toBe("MISS");
  });
});
