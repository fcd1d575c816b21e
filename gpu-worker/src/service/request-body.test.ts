import { Packr } from "msgpackr/index-no-eval";
import { describe, expect, it } from "vitest";
import { qnetRequestSchema } from "../../../shared/api/worker-api.ts";
import { decodeBody, parseRequest, readBody } from "./request-body.ts";

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const status = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as { status?: number }).status;
  }
  return 200;
};

describe("request bodies", () => {
  it("decodes JSON and msgpack by content type", () => {
    const packr = new Packr({ useRecords: false });
    expect(decodeBody("application/json; charset=utf-8", json({ a: 1 }))).toEqual({ a: 1 });
    expect(decodeBody("application/msgpack", packr.pack({ a: 1 }))).toEqual({ a: 1 });
  });

  it("refuses bad bodies with precise statuses", () => {
    expect(status(() => decodeBody("text/plain", json({})))).toBe(415);
    expect(status(() => decodeBody(undefined, json({})))).toBe(415);
    expect(status(() => decodeBody("application/json", new TextEncoder().encode("{nope")))).toBe(400);
    expect(status(() => decodeBody("application/msgpack", new Uint8Array([0xc1])))).toBe(400);
    expect(status(() => decodeBody("application/msgpack", new Uint8Array([0x01, 0x02])))).toBe(400);
    expect(status(() => parseRequest(qnetRequestSchema, "application/json", json({ tenant: "acme" }), "acme"))).toBe(400);
    expect(status(() => parseRequest(qnetRequestSchema, "application/json", json({ tenant: "other", query: "q" }), "acme"))).toBe(403);
  });

  it("applies schema defaults", () => {
    expect(parseRequest(qnetRequestSchema, "application/json", json({ tenant: "acme", query: " q " }), "acme")).toEqual({
      tenant: "acme",
      query: "q",
      dtype: "float32",
    });
  });

  it("stops reading past the size limit", async () => {
    const request = new Request("http://x/", { method: "POST", body: new Uint8Array(2000) });
    await expect(readBody(request, 1000)).rejects.toMatchObject({ status: 413 });
    const ok = new Request("http://x/", { method: "POST", body: new Uint8Array(10) });
    expect((await readBody(ok, 1000)).length).toBe(10);
  });
});
