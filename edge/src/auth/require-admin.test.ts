import { createExecutionContext, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE, errorOf, jsonRequest } from "../../test/support.ts";
import { createApp } from "../app.ts";

const app = createApp();
const post = (env: Cloudflare.Env, token: string) =>
  app.fetch(new Request(`${BASE}/v1/admin/tenants`, jsonRequest("POST", { id: "x", name: "x" }, { authorization: `Bearer ${token}` })), env, createExecutionContext());

describe("requireAdmin", () => {
  it("401s a wrong token", async () => {
    const response = await post(env, `${env.ADMIN_TOKEN}x`);
    expect(response.status).toBe(401);
    expect(await errorOf(response)).toEqual({ code: "unauthorized", message: "missing or invalid admin token" });
  });

  it("turns the admin API off (503) when ADMIN_TOKEN is not configured", async () => {
    const response = await post({ ...env, ADMIN_TOKEN: undefined }, "anything");
    expect(response.status).toBe(503);
    expect((await errorOf(response)).code).toBe("admin_disabled");
  });
});
