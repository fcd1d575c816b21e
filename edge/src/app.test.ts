import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";

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
