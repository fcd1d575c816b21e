import { describe, expect, it } from "vitest";
import * as z from "zod";
import { BuildConflictError, BuildQueueFullError, BuildsClosedError, BuildsUnavailableError } from "../index/build/errors.ts";
import { IndexNotFoundError, IndexUnavailableError, ModelMismatchError, SearchRequestError } from "../index/search-errors.ts";
import { ModelLimitError } from "../model/runtime/errors.ts";
import { abortError, ApiError, ERROR_STATUSES, toApiError } from "./errors.ts";

describe("toApiError", () => {
  it("maps typed errors to statuses", () => {
    const status = (e: unknown) => toApiError(e).error.status;
    expect(status(new IndexNotFoundError("no index acme/x@1"))).toBe(404);
    expect(status(new BuildConflictError("busy"))).toBe(409);
    expect(status(new ModelLimitError("max length must be…"))).toBe(400);
    expect(status(new ApiError(415, "unsupported_media_type", "x"))).toBe(415);
    expect(status(new DOMException("t", "TimeoutError"))).toBe(504);
    expect(status(new DOMException("a", "AbortError"))).toBe(499);
  });

  it("gives every domain error its wire code, and only request mistakes a 4xx with their message", () => {
    const answer = (e: unknown) => {
      const { error } = toApiError(e);
      return { status: error.status, code: error.code, message: error.message, headers: error.headers };
    };
    expect(answer(new SearchRequestError("unknown shard \"s7\""))).toMatchObject({ status: 400, code: "invalid_request", message: 'unknown shard "s7"' });
    expect(answer(new ModelLimitError("max length must be at most 128"))).toMatchObject({ status: 400, code: "invalid_request" });
    expect(answer(new IndexNotFoundError("index acme/x@1 not found"))).toMatchObject({ status: 404, code: "index_not_found" });
    expect(answer(new ModelMismatchError("built with model f…"))).toMatchObject({ status: 409, code: "model_mismatch" });
    expect(answer(new BuildConflictError("version 2 exists"))).toMatchObject({ status: 409, code: "build_conflict" });
    expect(answer(new BuildsUnavailableError())).toMatchObject({ status: 501, code: "builds_unavailable" });
    expect(answer(new BuildQueueFullError(16))).toMatchObject({ status: 503, code: "build_queue_full", headers: { "retry-after": "60" } });
    expect(answer(new BuildsClosedError())).toMatchObject({ status: 503, code: "shutting_down", headers: { "retry-after": "1" } });
    // The first shard failure may name store keys: only the summary is answered, the rest is logged.
    const unavailable = toApiError(new IndexUnavailableError("index acme/x@1: no shard could be loaded", new Error("GET tenants/acme/…/s00000.hxs: 403")));
    expect(unavailable.error).toMatchObject({ status: 503, code: "index_unavailable", message: "index acme/x@1: no shard could be loaded (details in the worker log)" });
    expect(unavailable.logDetail).toBe(true);
    expect(unavailable.isInternal).toBe(false);
  });

  it("answers a BuildQueueFullError from the build manager as a 503 ApiError", () => {
    const { error } = toApiError(new BuildQueueFullError(2));
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(503);
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

  it("treats an internal invariant's RangeError as a 500 that names the request id and nothing else", () => {
    const invariant = new RangeError("onnxRowScorer: row 812 is out of range for a shard of 512 rows");
    const { error, isInternal, logDetail } = toApiError(invariant, "req-123");
    expect(error.status).toBe(500);
    expect(error.body()).toEqual({ error: { code: "internal", message: "internal error (request id req-123)" } });
    expect(JSON.stringify(error.body())).not.toContain("812");
    expect(isInternal).toBe(true);
    expect(logDetail).toBe(true);
    // A plain TypeError or a string thrown is no different.
    expect(toApiError(new TypeError("x is undefined")).error.status).toBe(500);
    expect(toApiError("boom").error.message).toBe("internal error");
  });

  it("has one entry per error class", () => {
    const types = ERROR_STATUSES.map((s) => s.type);
    expect(new Set(types).size).toBe(types.length);
  });

  it("tells a deadline from a client that went away", () => {
    expect(abortError(new DOMException("t", "TimeoutError")).status).toBe(504);
    expect(abortError("Client connection prematurely closed.").status).toBe(499);
  });
});
