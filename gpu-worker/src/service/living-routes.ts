/**
 * The worker routes of living indexes (issue 10), mounted by app.ts after signature auth, so each
 * request here is signed, its body capped (MAX_BODY_BYTES) and read once; parseRequest checks the
 * body's tenant against the signed one (403 otherwise), and the work runs admitted, under the
 * request deadline, like a search:
 *   POST /v1/wal             walWriteRequestSchema → WalWriteAnswer (embed, write create-if-absent)
 *   POST /v1/documents/get   documentGetRequestSchema → DocumentAnswer, or 404 document_not_found
 *   POST /v1/index-state     indexStateRequestSchema → IndexStateAnswer
 * No replay refusal on /v1/wal (unlike /v1/builds): a replayed write finds its own object and
 * answers existed: true, changing nothing, which is exactly what a retry must do.
 */
import type { Context, Hono } from "hono";
import { documentGetRequestSchema, indexStateRequestSchema, walWriteRequestSchema } from "../../../shared/api/living-api.ts";
import type { IndexBackend } from "../index/index-backend.ts";
import type { ServiceEnv } from "./context.ts";
import { parseRequest } from "./request-body.ts";
import { runAdmitted, type ScopeOptions } from "./request-scope.ts";

export interface LivingRouteDeps {
  backend: Pick<IndexBackend, "writeWal" | "getDocument" | "indexState">;
  /** The admission scope of a request (app.ts scopeFor). */
  scopeFor: (c: Context<ServiceEnv>) => ScopeOptions;
}

export function registerLivingRoutes(app: Hono<ServiceEnv>, deps: LivingRouteDeps): void {
  const { backend, scopeFor } = deps;

  app.post("/v1/wal", async (c) => {
    const request = parseRequest(walWriteRequestSchema, c.req.header("content-type"), c.get("body"), c.get("tenant"));
    return c.json(await runAdmitted(scopeFor(c), (scope) => backend.writeWal(request, scope.signal)));
  });

  app.post("/v1/documents/get", async (c) => {
    const request = parseRequest(documentGetRequestSchema, c.req.header("content-type"), c.get("body"), c.get("tenant"));
    return c.json(await runAdmitted(scopeFor(c), () => backend.getDocument(request)));
  });

  app.post("/v1/index-state", async (c) => {
    const request = parseRequest(indexStateRequestSchema, c.req.header("content-type"), c.get("body"), c.get("tenant"));
    return c.json(await runAdmitted(scopeFor(c), () => backend.indexState(request)));
  });
}
