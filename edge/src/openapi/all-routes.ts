/**
 * Every public route's docs, for /v1/openapi.json. A new router adds its RouteDoc list here
 * (one line), next to its app.route(...) mount in app.ts.
 */
import { adminRouteDocs } from "../admin/routes.ts";
import { documentRouteDocs } from "../documents/routes.ts";
import { indexRouteDocs } from "../indexes/routes.ts";
import { pageRouteDocs } from "../page/routes.ts";
import { healthRouteDocs } from "../health.ts";
import { readinessRouteDocs } from "../readiness.ts";
import { searchApiRouteDocs } from "./search-api-docs.ts";
import type { RouteDoc } from "./route-doc.ts";

export const openApiRouteDocs = (): RouteDoc[] => [
  ...healthRouteDocs,
  ...readinessRouteDocs,
  ...openApiSelfDocs,
  ...pageRouteDocs,
  ...adminRouteDocs,
  ...indexRouteDocs,
  ...searchApiRouteDocs,
  ...documentRouteDocs,
];

const openApiSelfDocs: RouteDoc[] = [
  {
    method: "get",
    path: "/v1/openapi.json",
    summary: "This document",
    tags: ["meta"],
    auth: "none",
    responses: { 200: { description: "The OpenAPI 3.1 document", contentType: "application/json" } },
  },
];
