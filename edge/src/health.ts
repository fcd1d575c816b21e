/** GET /healthz: liveness, no dependencies touched (a load balancer polls it). */
import { Hono } from "hono";
import { z } from "zod";
import type { EdgeEnv } from "./env.ts";
import type { RouteDoc } from "./openapi/route-doc.ts";

const healthResponse = z.object({ ok: z.literal(true), service: z.string() });

export const healthRoutes = new Hono<EdgeEnv>();
healthRoutes.get("/healthz", (c) => c.json<z.infer<typeof healthResponse>>({ ok: true, service: c.env.SERVICE_NAME }));

export const healthRouteDocs: RouteDoc[] = [
  { method: "get", path: "/healthz", summary: "Liveness check", tags: ["meta"], auth: "none", responses: { 200: { description: "The service is up", schema: healthResponse } } },
];
