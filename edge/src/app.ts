/**
 * The edge's Hono app: a list of mounts, one router per concern, plus the JSON error handlers.
 * Each router applies its own auth (requireApiKey / requireAdmin) and documents its routes for
 * /v1/openapi.json (openapi/all-routes.ts), so adding a feature is one line here and one there.
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { adminRoutes } from "./admin/routes.ts";
import { buildRoutes } from "./builds/routes.ts";
import type { EdgeEnv } from "./env.ts";
import { ApiError, errorResponse } from "./errors.ts";
import { healthRoutes } from "./health.ts";
import { indexRoutes } from "./indexes/routes.ts";
import { openApiRoutes } from "./openapi/routes.ts";
import { pageRoutes } from "./page/routes.ts";
import { qnetRoutes } from "./qnet/routes.ts";
import { searchRoutes } from "./search/routes.ts";
import { uploadRoutes } from "./uploads/routes.ts";

export type { EdgeBindings, EdgeEnv } from "./env.ts";

export function createApp(): Hono<EdgeEnv> {
  const app = new Hono<EdgeEnv>();
  app.route("/", healthRoutes);
  app.route("/", pageRoutes);
  app.route("/v1", openApiRoutes);
  app.route("/v1/admin", adminRoutes);
  app.route("/v1/indexes", indexRoutes);
  app.route("/v1/indexes", searchRoutes);
  app.route("/v1/indexes", uploadRoutes);
  app.route("/v1/indexes", buildRoutes);
  app.route("/v1", qnetRoutes);

  app.notFound((c) => errorResponse(c, 404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError((error, c) => {
    if (error instanceof ApiError) return errorResponse(c, error.status, error.code, error.message, error.headers);
    if (error instanceof HTTPException && error.status < 500) return errorResponse(c, error.status, "bad_request", error.message || "bad request");
    // Never echo internals (stack traces, upstream URLs, secrets) to clients; log only the type and message
    // (no request headers: they carry API keys).
    console.error("unhandled edge error", error instanceof Error ? `${error.name}: ${error.message}` : typeof error);
    return errorResponse(c, 500, "internal", "internal error");
  });
  return app;
}
