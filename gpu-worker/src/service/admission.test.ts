import { describe, expect, it } from "vitest";
import { Admission } from "./admission.ts";
import { ApiError } from "./errors.ts";

describe("Admission", () => {
  it("runs up to `concurrency`, queues up to `limit`, refuses beyond with Retry-After", async () => {
    const admission = new Admission({ limit: 3, concurrency: 1 });
    const first = await admission.acquire();
    const second = admission.acquire();
    const third = admission.acquire();
    expect(admission.stats).toEqual({ running: 1, waiting: 2, limit: 3 });
    const refused = await admission.acquire().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).status).toBe(503);
    expect(Number((refused as ApiError).headers["retry-after"])).toBeGreaterThanOrEqual(1);

    first.release();
    first.release(); // idempotent
    const p2 = await second;
    expect(admission.stats).toEqual({ running: 1, waiting: 1, limit: 3 });
    p2.release();
    (await third).release();
    expect(admission.stats).toEqual({ running: 0, waiting: 0, limit: 3 });
  });

  it("drops a waiter whose signal fires", async () => {
    const admission = new Admission({ limit: 2, concurrency: 1 });
    const held = await admission.acquire();
    const controller = new AbortController();
    const waiting = admission.acquire(controller.signal);
    controller.abort(new DOMException("gone", "AbortError"));
    await expect(waiting).rejects.toMatchObject({ name: "AbortError" });
    expect(admission.stats.waiting).toBe(0);
    held.release();
    expect(admission.stats.running).toBe(0);
  });

  it("reports time spent in line", async () => {
    const admission = new Admission({ limit: 2, concurrency: 1 });
    const held = await admission.acquire();
    const waiting = admission.acquire();
    await new Promise((r) => setTimeout(r, 20));
    held.release();
    expect((await waiting).queuedMs).toBeGreaterThanOrEqual(15);
  });

  it("bounds the bytes of bodies being read, across requests", () => {
    const admission = new Admission({ limit: 2, concurrency: 1, bodyBytesLimit: 100 });
    admission.reserveBodyBytes(60);
    expect(() => admission.reserveBodyBytes(41)).toThrow(expect.objectContaining({ status: 503, code: "overloaded" }));
    admission.reserveBodyBytes(40);
    admission.releaseBodyBytes(60);
    expect(admission.pendingBodyBytes).toBe(40);
    admission.reserveBodyBytes(60);
  });
});
