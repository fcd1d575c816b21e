/** GET /: the search page, under a CSP that allows only its own inline script and style (by hash). */
import { Hono } from "hono";
import type { EdgeEnv } from "../env.ts";
import type { RouteDoc } from "../openapi/route-doc.ts";
import { PAGE_SCRIPT, PAGE_STYLE, renderSearchPage } from "./search-page.ts";

async function cspHash(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return `'sha256-${btoa(String.fromCharCode(...digest))}'`;
}

// The page is constant, so it and its CSP are computed once per isolate.
let cached: Promise<{ html: string; csp: string }> | undefined;

async function page(): Promise<{ html: string; csp: string }> {
  const [script, style] = await Promise.all([cspHash(PAGE_SCRIPT), cspHash(PAGE_STYLE)]);
  const csp = [
    "default-src 'none'",
    `script-src ${script}`,
    `style-src ${style}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return { html: renderSearchPage(), csp };
}

export const pageRoutes = new Hono<EdgeEnv>();
pageRoutes.get("/", async (c) => {
  cached ??= page();
  const { html, csp } = await cached;
  return c.html(html, 200, { "Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer" });
});

export const pageRouteDocs: RouteDoc[] = [
  { method: "get", path: "/", summary: "The search page (HTML)", tags: ["meta"], auth: "none", responses: { 200: { description: "A page to try searches with an API key", contentType: "text/html" } } },
];
