import { describe, expect, it } from "vitest";
import { readCappedBody } from "./capped-body.ts";

class TooLarge extends Error {}
const tooLarge = () => new TooLarge("too large");

/** A body without Content-Length, arriving in `chunks`; records whether the reader cancelled it. */
function chunkedRequest(chunks: Uint8Array[]): { request: Request; cancelled: () => boolean; pulled: () => number } {
  let cancelled = false;
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = chunks[pulled++];
      if (next) controller.enqueue(next);
      else controller.close();
    },
    cancel() {
      cancelled = true;
    },
  });
  const request = new Request("http://x/", { method: "POST", body, duplex: "half" } as RequestInit);
  return { request, cancelled: () => cancelled, pulled: () => pulled };
}

describe("readCappedBody", () => {
  it("returns the whole body, joined from its chunks", async () => {
    const { request } = chunkedRequest([new Uint8Array([1, 2]), new Uint8Array([3]), new Uint8Array([4, 5])]);
    expect(await readCappedBody(request, 5, tooLarge)).toEqual(new Uint8Array([1, 2, 3, 4, 5]));
    const single = new Request("http://x/", { method: "POST", body: new Uint8Array(10) });
    expect((await readCappedBody(single, 10, tooLarge)).length).toBe(10);
  });

  it("an empty or missing body is zero bytes", async () => {
    expect((await readCappedBody(new Request("http://x/"), 0, tooLarge)).length).toBe(0);
    expect((await readCappedBody(new Request("http://x/", { method: "POST", body: "" }), 0, tooLarge)).length).toBe(0);
  });

  it("refuses by Content-Length before reading", async () => {
    const { request } = chunkedRequest([new Uint8Array(10)]);
    request.headers.set("content-length", "2000");
    await expect(readCappedBody(request, 1000, tooLarge)).rejects.toBeInstanceOf(TooLarge);
    expect(request.bodyUsed).toBe(false);
  });

  it("counts a body without Content-Length, and stops reading it past the cap", async () => {
    const chunks = Array.from({ length: 10 }, () => new Uint8Array(400));
    const { request, cancelled, pulled } = chunkedRequest(chunks);
    await expect(readCappedBody(request, 1000, tooLarge)).rejects.toBeInstanceOf(TooLarge);
    expect(cancelled()).toBe(true);
    expect(pulled()).toBeLessThan(chunks.length);
  });

  it("drains a body past the cap up to drainLimitBytes, so it is read to its end instead of cancelled", async () => {
    const chunks = Array.from({ length: 10 }, () => new Uint8Array(400));
    const drained = chunkedRequest(chunks);
    await expect(readCappedBody(drained.request, 1000, tooLarge, { drainLimitBytes: 4000 })).rejects.toBeInstanceOf(TooLarge);
    expect(drained.cancelled()).toBe(false);
    expect(drained.pulled()).toBe(chunks.length + 1);
    // Longer than the drain limit: cancelled after all.
    const endless = chunkedRequest(Array.from({ length: 100 }, () => new Uint8Array(400)));
    await expect(readCappedBody(endless.request, 1000, tooLarge, { drainLimitBytes: 4000 })).rejects.toBeInstanceOf(TooLarge);
    expect(endless.cancelled()).toBe(true);
    expect(endless.pulled()).toBeLessThan(20);
  });
});
