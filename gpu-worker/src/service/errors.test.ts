import { describe, expect, it } from "vitest";
import * as z from "zod";
import { abortError, ApiError, toApiError } from "./errors.ts";
import { BuildConflictError, IndexNotFoundError } from "./index-backend.ts";

describe("toApiError", () => {
  it("maps typed errors to statuses", () => {
    const status = (e: unknown) => toApiError(e).error.status;
    expect(status(new IndexNotFoundError("no index acme/x@1"))).toBe(404);
    expect(status(new BuildConflictError("busy"))).toBe(409);
    expect(status(new RangeError("max length must be…"))).toBe(400);
    expect(status(new ApiError(415, "unsupported_media_type", "x"))).toBe(415);
    expect(status(new DOMException("t", "TimeoutError"))).toBe(504);
    expect(status(new DOMException("a", "AbortError"))).toBe(499);
  });

  it("describes zod issues with their paths", () => {
    const parsed = z.object({ params: z.object({ k: z.number().min(1) }) }).safeParse({ params: { k: 0 } });
    const { error } = toApiError(parsed.error);
    expect(error.status).toBe(400);
    expect(error.message).toMatch(/^params\.k: /);
  });

  it("hides unknown errors behind a generic 500", () => {
    const { error, isInternal } = toApiError(new Error("connection string postgres://secret"));
    expect(error.body()).toEqual({ error: { code: "internal", message: "internal error" } });
    expect(isInternal).toBe(true);
  });

  it("tells a deadline from a client that went away", () => {
    expect(abortError(new DOMException("t", "TimeoutError")).status).toBe(504);
    expect(abortError("Client connection prematurely closed.").status).toBe(499);
  });
});
