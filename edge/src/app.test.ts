import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "./app.ts";

describe("edge app (in workerd)", () => {
  it("answers health checks", async () => {
    const response = await SELF.fetch("https://edge.test/healthz");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, service: "hypencoder-search" });
  });

  it("returns JSON errors for unknown routes", async () => {
    const response = await SELF.fetch("https://edge.test/v1/nope");
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: "not_found", message: "no route for GET /v1/nope" } });
  });
});

describe("edge app error handling", () => {
  it("turns an unexpected exception into a 500 that reveals nothing", async () => {
    const app = createApp();
    app.get("/boom", () => {
      throw new Error("upstream http://10.0.0.7 said: secret detail");
    });
    const response = await app.request("/boom", {}, env);
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ error: { code: "internal", message: "internal error" } });
  });
});
