import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ApiError } from "../errors.ts";
import { fakeWorkerPool } from "../../test/fake-workers.ts";
import { callOwner } from "./owner-call.ts";
import { ownersFor } from "./rendezvous.ts";
import { parseWorkerPool } from "./worker-pool.ts";

const SECRET = (env as unknown as { WORKER_SIGNING_SECRET: string }).WORKER_SIGNING_SECRET;
const WORKERS = parseWorkerPool((env as unknown as { GPU_WORKERS: string }).GPU_WORKERS);

function setup(timeoutMs = 1_000) {
  const pool = fakeWorkerPool(SECRET);
  pool.routes.set("POST /v1/echo", (c) => Response.json({ worker: c.worker, body: c.body }));
  const run = (key: string, maxAttempts?: number) =>
    callOwner({
      key,
      pool: { workers: WORKERS, secret: SECRET, timeoutMs },
      fetcher: pool.fetcher,
      path: "/v1/echo",
      tenant: "acme",
      json: { tenant: "acme", n: 1 },
      accept: "application/json",
      maxAttempts,
      read: async (r) => (await r.json()) as { worker: string },
    });
  return { pool, run };
}

describe("callOwner", () => {
  it("calls the key's first rendezvous owner, signed", async () => {
    const { pool, run } = setup();
    const result = await run("acme/qnet");
    expect(result.worker).toBe(ownersFor("acme/qnet", WORKERS)[0]);
    expect(result.value.worker).toBe(result.worker);
    expect(pool.calls).toHaveLength(1);
    expect(pool.calls[0]!.tenant).toBe("acme");
  });

  it("moves on after a timeout, and gives up after maxAttempts with a 503", async () => {
    const { pool, run } = setup(50);
    const owners = ownersFor("k", WORKERS);
    pool.behaviour.set(owners[0]!, "hang");
    const result = await run("k");
    expect(result.worker).toBe(owners[1]);
    expect(result.attempts).toEqual([
      { worker: owners[0], shards: [], ok: false, reason: "timeout" },
      { worker: owners[1], shards: [], ok: true },
    ]);
    pool.behaviour.set(owners[1]!, "http500");
    await expect(run("k", 2)).rejects.toBeInstanceOf(ApiError);
    expect(pool.calls.map((c) => c.worker).slice(2)).toEqual(owners.slice(0, 2));
  });
});
