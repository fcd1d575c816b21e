/**
 * An oversized request body must not stall the connection it came on (issue 11, finding 11): under
 * a real `wrangler dev`, a 10 MB body to a route capped at 64 KiB is answered 413, and the NEXT
 * request on the same keep-alive connection answers at once. Both ways a body can come: chunked
 * (no Content-Length: read to the cap, then drained) and with a declared Content-Length (refused
 * before reading).
 */
import { Agent, request as httpRequest } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../infra/dev/processes.ts";
import { type RunningEdge, startEdge } from "../infra/dev/stack.ts";
import { quietLines } from "./support/product-stack.ts";

const ADMIN_TOKEN = "oversized-body-admin-token";
const BODY_BYTES = 10 * 2 ** 20;

interface Answer {
  status: number;
  body: string;
  ms: number;
}

/** One request on `agent` (one socket, kept alive); `chunks` are written one by one (chunked unless Content-Length is set). */
function send(agent: Agent, url: string, options: { method: string; headers?: Record<string, string>; chunks?: Uint8Array[]; timeoutMs: number }): Promise<Answer> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method, agent, headers: options.headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode!, body, ms: Date.now() - started }));
      res.on("error", reject);
    });
    req.setTimeout(options.timeoutMs, () => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
    req.on("error", reject);
    (async () => {
      for (const chunk of options.chunks ?? []) {
        if (req.destroyed) return;
        if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
      }
      req.end();
    })().catch(reject);
  });
}

function tenMegabytes(): Uint8Array[] {
  const chunk = new Uint8Array(256 * 1024).fill(0x20);
  return Array.from({ length: BODY_BYTES / chunk.length }, () => chunk);
}

describe("an oversized body under wrangler dev", () => {
  let dir: string;
  let edge: RunningEdge;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "oversized-body-"));
    edge = await startEdge({
      port: await freePort(),
      persistDir: join(dir, "wrangler-state"),
      // Nothing here needs a worker or S3: the body is refused before either is asked.
      workers: ["http://127.0.0.1:9"],
      s3: { endpoint: "http://127.0.0.1:9", region: "us-east-1", bucket: "unused", accessKeyId: "unused", secretAccessKey: "unused" },
      adminToken: ADMIN_TOKEN,
      signingSecret: "oversized-body-signing-secret",
      onLine: quietLines("edge"),
    });
  }, 180_000);

  afterAll(async () => {
    await edge?.process.stop("SIGTERM");
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ["chunked, no Content-Length", {}],
    ["with a declared Content-Length", { "content-length": String(BODY_BYTES) }],
  ])("%s: 413, then the next request on the connection answers at once", async (_name, lengthHeader) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const refused = await send(agent, `${edge.url}/v1/admin/tenants`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json", ...lengthHeader },
        chunks: tenMegabytes(),
        timeoutMs: 30_000,
      });
      expect(refused.status).toBe(413);
      expect(JSON.parse(refused.body)).toMatchObject({ error: { code: "payload_too_large" } });

      for (let i = 0; i < 3; i++) {
        const next = await send(agent, `${edge.url}/healthz`, { method: "GET", timeoutMs: 5_000 });
        expect(next.status).toBe(200);
        expect(next.ms).toBeLessThan(2_000);
      }
    } finally {
      agent.destroy();
    }
  }, 120_000);
});
