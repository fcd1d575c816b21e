/**
 * The edge's Hono app: a list of mounts, one router per concern, plus the JSON error handlers.
 * Each router applies its own auth (requireApiKey / requireAdmin) and documents its routes for
 * /v1/openapi.json (openapi/all-routes.ts), so adding a feature is one line here and one there.
 */
import { Hono } from "hono";
import { adminRoutes } from "./admin/routes.ts";
import { buildRoutes } from "./builds/routes.ts";
import { documentRoutes } from "./documents/routes.ts";
import type { EdgeEnv } from "./env.ts";
import { errorResponse, handleError } from "./errors.ts";
import { healthRoutes } from "./health.ts";
import { indexRoutes } from "./indexes/routes.ts";
import { openApiRoutes } from "./openapi/routes.ts";
import { pageRoutes } from "./page/routes.ts";
import { queryModelRoutes } from "./query-model/routes.ts";
import { readinessRoutes } from "./readiness.ts";
import { searchRoutes } from "./search/routes.ts";
import { uploadRoutes } from "./uploads/routes.ts";

export type { EdgeBindings, EdgeEnv } from "./env.ts";

export function createApp(): Hono<EdgeEnv> {
  const app = new Hono<EdgeEnv>();
  app.route("/", healthRoutes);
  app.route("/", readinessRoutes);
  app.route("/", pageRoutes);
  app.route("/v1", openApiRoutes);
  app.route("/v1/admin", adminRoutes);
  app.route("/v1/indexes", indexRoutes);
  app.route("/v1/indexes", searchRoutes);
  app.route("/v1/indexes", uploadRoutes);
  app.route("/v1/indexes", buildRoutes);
  app.route("/v1/indexes", documentRoutes);
  app.route("/v1", queryModelRoutes);
  return useErrorHandlers(app);
}

/**
 * The JSON error handlers: unknown routes, and every thrown error through errors.ts's one mapping
 * table. Route tests mount their router behind these too (edge/test/route-harness.ts).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function useErrorHandlers<A extends Hono<any>>(app: A): A {
  app.notFound((c) => errorResponse(c, 404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError(handleError);
  return app;
}
