import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { handleError } from "../errors.ts";
import { parseInput, readJson } from "./validate.ts";

const schema = z.strictObject({ name: z.string().min(1), tags: z.array(z.string().max(3)).optional() });
const app = new Hono();
app.post("/echo", async (c) => c.json(await readJson(c, schema, { maxBytes: 64 })));
app.get("/q", (c) => c.json(parseInput(z.strictObject({ n: z.coerce.number().int() }), c.req.query(), "query")));
app.onError(handleError);

const post = (body: BodyInit, contentType = "application/json", headers: Record<string, string> = {}) =>
  app.request("/echo", { method: "POST", body, headers: { "content-type": contentType, ...headers } });

describe("readJson and parseInput", () => {
  it("returns the parsed, validated body", async () => {
    const response = await post(JSON.stringify({ name: "a", tags: ["x"] }), "application/json; charset=utf-8");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ name: "a", tags: ["x"] });
  });

  it("415s a body that is not declared JSON", async () => {
    const response = await post("name=a", "application/x-www-form-urlencoded");
    expect(response.status).toBe(415);
  });

  it("413s by Content-Length and by the bytes actually sent", async () => {
    const big = JSON.stringify({ name: "x".repeat(100) });
    expect((await post(big)).status).toBe(413);
    // A stream has no Content-Length, so the reader must count.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const streamed = await post(stream);
    expect(streamed.status).toBe(413);
    expect(await streamed.json()).toEqual({ error: { code: "payload_too_large", message: "request body exceeds 64 bytes" } });
  });

  it("400s invalid JSON, and names every invalid or unknown field", async () => {
    const syntax = await post("{not json");
    expect(syntax.status).toBe(400);
    expect((await syntax.json<{ error: { code: string } }>()).error.code).toBe("invalid_json");
    const invalid = await post(JSON.stringify({ name: "", tags: ["long"], extra: 1 }));
    expect(invalid.status).toBe(400);
    const { error } = await invalid.json<{ error: { code: string; message: string } }>();
    expect(error.code).toBe("invalid_request");
    expect(error.message).toContain("body.name: ");
    expect(error.message).toContain("body.tags[0]: ");
    expect(error.message).toContain('body: Unrecognized key: "extra"');
  });

  it("validates query strings", async () => {
    expect(await (await app.request("/q?n=3")).json()).toEqual({ n: 3 });
    const bad = await app.request("/q?n=x&m=1");
    expect(bad.status).toBe(400);
    expect((await bad.json<{ error: { message: string } }>()).error.message).toMatch(/query\.n: .*; query: Unrecognized key: "m"/);
  });
});
