/** GET /v1/openapi.json: the OpenAPI 3.1 document of this API (public, no key needed). */
import { Hono } from "hono";
import type { EdgeEnv } from "../env.ts";
import { openApiRouteDocs } from "./all-routes.ts";
import { buildOpenApiDocument } from "./document.ts";

// Built on first use, then kept for the isolate's life: it depends only on the code.
let cached: string | undefined;

function documentJson(): string {
  cached ??= JSON.stringify(
    buildOpenApiDocument(openApiRouteDocs(), {
      title: "Hypencoder Search",
      version: "1",
      description: "Multi-tenant search with Hypencoder q-nets. Errors are always {\"error\":{\"code\",\"message\"}}.",
    }),
  );
  return cached;
}

export const openApiRoutes = new Hono<EdgeEnv>();
openApiRoutes.get("/openapi.json", (c) => c.body(documentJson(), 200, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "public, max-age=300" }));

