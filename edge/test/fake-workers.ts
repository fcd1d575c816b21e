/**
 * Test double for the GPU worker pool: a `fetch`-compatible function that verifies each request's
 * signature like the real worker does and answers /v1/search with msgpack frames computed from
 * made-up shard contents. Behaviour per worker (down, slow, 500, error frame, missing shards) is
 * scriptable, and every call is recorded. Used by the routing, search and cache tests.
 */
import { encodeFrame } from "../../shared/api/frames.ts";
import { verifyRequest } from "../../shared/api/signing.ts";
import type { Frame, Hit, SearchRequest } from "../../shared/api/worker-api.ts";

export type WorkerBehaviour = "ok" | "down" | "hang" | "http500" | "http400" | "errorFrame" | "loseShards" | "garbage" | "oversizedFrame";

/** One frame that never ends: a msgpack bin32 header for 1 GiB, then zeros as long as they are read. */
function endlessFrame(): Response {
  const header = new Uint8Array([0xc6, 0x40, 0x00, 0x00, 0x00]);
  const chunk = new Uint8Array(4 * 2 ** 20);
  let sentHeader = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(sentHeader ? chunk : header);
      sentHeader = true;
    },
  });
  return new Response(body, { headers: { "content-type": "application/msgpack" } });
}

export interface FakeCall {
  worker: string;
  path: string;
  tenant: string;
  body: SearchRequest | Record<string, unknown> | undefined;
  aborted: () => boolean;
}

export interface FakeWorkerPool {
  fetcher: typeof fetch;
  calls: FakeCall[];
  behaviour: Map<string, WorkerBehaviour>;
  /** Extra handlers for non-search paths (builds). */
  routes: Map<string, (call: FakeCall) => Response | Promise<Response>>;
}

/** Deterministic documents of a shard: `${shard}-d${i}` with scores that interleave across shards. */
export function shardHits(shard: string, count = 5): Hit[] {
  let h = 0;
  for (const ch of shard) h = (h * 31 + ch.charCodeAt(0)) % 997;
  return Array.from({ length: count }, (_, i) => ({ id: `${shard}-d${i}`, score: 100 - i * 10 - (h % 7) }));
}

export function frames(...list: Frame[]): Response {
  const parts = list.map(encodeFrame);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const part of parts) controller.enqueue(part);
      controller.close();
    },
  });
  return new Response(body, { headers: { "content-type": "application/msgpack" } });
}

export function fakeWorkerPool(secret: string): FakeWorkerPool {
  const calls: FakeCall[] = [];
  const behaviour = new Map<string, WorkerBehaviour>();
  const routes = new Map<string, (call: FakeCall) => Response | Promise<Response>>();

  const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const worker = url.origin;
    const bytes = new Uint8Array(await request.arrayBuffer());
    const verified = await verifyRequest({ secrets: secret, method: request.method, host: url.host, path: url.pathname + url.search, headers: request.headers, body: bytes });
    if (!verified.ok) return Response.json({ error: { code: "unauthorized", message: verified.reason } }, { status: 401 });
    const body = bytes.length > 0 ? (JSON.parse(new TextDecoder().decode(bytes)) as SearchRequest) : undefined;
    const signal = init?.signal ?? undefined;
    const call: FakeCall = { worker, path: url.pathname, tenant: verified.tenant, body, aborted: () => signal?.aborted ?? false };
    calls.push(call);
    const mode = behaviour.get(worker) ?? "ok";
    if (mode === "down") throw new TypeError("connect ECONNREFUSED");
    if (mode === "hang") {
      return new Promise<Response>((_, reject) => {
        if (signal?.aborted) reject(signal.reason);
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    }
    if (mode === "http500") return Response.json({ error: { code: "internal", message: "boom" } }, { status: 500 });
    if (mode === "http400") return Response.json({ error: { code: "invalid_request", message: "query too long for the model" } }, { status: 400 });
    const route = routes.get(`${request.method} ${url.pathname.replace(/\/[^/]+$/, "/:id")}`) ?? routes.get(`${request.method} ${url.pathname}`);
    if (route) return route(call);
    if (url.pathname !== "/v1/search") return new Response("no route", { status: 404 });
    const search = body as SearchRequest;
    const shards = search.shards ?? [];
    if (mode === "errorFrame") return frames({ type: "progress", shard: shards[0]!, iteration: 0, hits: [] }, { type: "error", code: "shard_unavailable", message: "s3 down" });
    if (mode === "oversizedFrame") return endlessFrame();
    if (mode === "garbage") return new Response(new Uint8Array([0xc1, 0xc1]), { headers: { "content-type": "application/msgpack" } });
    const served = mode === "loseShards" ? shards.slice(1) : shards;
    const hits = served
      .flatMap((s) => shardHits(s))
      .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
      .slice(0, search.params.k);
    const lost = shards.filter((s) => !served.includes(s));
    return frames(
      ...served.map((s): Frame => ({ type: "progress", shard: s, iteration: 1, hits: shardHits(s, 1) })),
      {
        type: "result",
        hits,
        stats: { docsScored: served.length * 5, iterations: 2, shardsSearched: served.length, ms: { queue: 1, encode: 2, search: 3, total: 6 } },
        partial: lost.length > 0,
        missingShards: lost,
      },
    );
  }) as typeof fetch;

  return { fetcher, calls, behaviour, routes };
}
