/**
 * The edge's Hono app. Routes are kept thin: each delegates to a module that owns its concern.
 */
import { Hono } from "hono";
import { errorResponse } from "./errors.ts";

export interface EdgeBindings {
  SERVICE_NAME: string;
}

export function createApp(): Hono<{ Bindings: EdgeBindings }> {
  const app = new Hono<{ Bindings: EdgeBindings }>();
  app.get("/healthz", (c) => c.json({ ok: true, service: c.env.SERVICE_NAME }));
  app.notFound((c) => errorResponse(c, 404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError((error, c) => {
    // Never echo internals (stack traces, upstream URLs, secrets) to clients.
    console.error("unhandled edge error", error instanceof Error ? error.name : typeof error);
    return errorResponse(c, 500, "internal", "internal error");
  });
  return app;
}
