import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE } from "../../test/support.ts";

describe("GET / (search page)", () => {
  it("serves a self-contained page under a strict CSP", async () => {
    const response = await SELF.fetch(`${BASE}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    const csp = response.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).toContain("connect-src 'self'");

    const html = await response.text();
    for (const id of ["key", "load", "index", "query", "search", "hits", "error"]) expect(html).toContain(`id="${id}"`);
    // No external assets: no src/href attributes and no absolute URLs in fetches.
    expect(html).not.toMatch(/\s(src|href)=/);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it("allows exactly the inline script it contains", async () => {
    const response = await SELF.fetch(`${BASE}/`);
    const csp = response.headers.get("content-security-policy")!;
    const html = await response.text();
    const script = /<script>([\s\S]*)<\/script>/.exec(html)![1]!;
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(script)));
    expect(csp).toContain(`'sha256-${btoa(String.fromCharCode(...digest))}'`);
  });
});
