/**
 * /v1/indexes: a tenant's indexes. Every query is scoped by the authenticated tenant, and an
 * index of another tenant is reported exactly like a missing one (404, never 403), so ids of
 * other tenants' indexes cannot be probed.
 */
import { Hono } from "hono";
import type { z } from "zod";
import { requireApiKey } from "../auth/require-api-key.ts";
import { createIndex, getActiveBuild, getIndex, listIndexes, listIndexVersions, softDeleteIndex, type IndexRecord } from "../db/indexes.ts";
import type { EdgeEnv } from "../env.ts";
import { ApiError, notFound } from "../errors.ts";
import { parseInput, readJson } from "../http/validate.ts";
import { indexWriterStub } from "../living/index-writer.ts";
import type { RouteDoc } from "../openapi/route-doc.ts";
import { defaultFetcher, type Fetcher } from "../routing/worker-client.ts";
import { liveIndexState } from "./live-state.ts";
import { createIndexBody, deletedIndex, indexDetail, indexList, indexParams, indexSummary } from "./schemas.ts";

type IndexSummary = z.infer<typeof indexSummary>;

function summary(index: IndexRecord): IndexSummary {
  // Deleted indexes are never returned by the queries these views are built from.
  return { id: index.id, status: index.status === "ready" ? "ready" : "empty", activeVersion: index.activeVersion, docCount: index.docCount, createdAt: index.createdAt, fields: index.fields };
}

export interface IndexRouteDeps {
  /** How the index detail reaches the workers (POST /v1/index-state); tests pass the fake pool. */
  fetcher?: Fetcher;
}

export function createIndexRoutes(deps: IndexRouteDeps = {}): Hono<EdgeEnv> {
  const fetcher = deps.fetcher ?? defaultFetcher;
  const indexRoutes = new Hono<EdgeEnv>();

  indexRoutes.post("/", requireApiKey("manage"), async (c) => {
    const { id, fields } = await readJson(c, createIndexBody);
    // The field schema is fixed here: there is no route that changes it (segments' filter columns follow it).
    const result = await createIndex(c.env.DB, c.get("auth").tenantId, id, fields ?? {});
    if (!result.ok) {
      throw new ApiError(
        409,
        "conflict",
        result.reason === "deleted" ? `index ${id} was deleted and its id cannot be reused yet` : `index ${id} already exists`,
      );
    }
    return c.json<IndexSummary>(summary(result.index), 201);
  });

  indexRoutes.get("/", requireApiKey("search", "manage"), async (c) => {
    const indexes = await listIndexes(c.env.DB, c.get("auth").tenantId);
    return c.json<z.infer<typeof indexList>>({ indexes: indexes.map(summary) });
  });

  indexRoutes.get("/:id", requireApiKey("search", "manage"), async (c) => {
    const { id } = parseInput(indexParams, c.req.param(), "path");
    const { tenantId } = c.get("auth");
    const index = await getIndex(c.env.DB, tenantId, id);
    if (index === null) throw notFound(`index ${id}`);
    const [versions, activeBuild] = await Promise.all([listIndexVersions(c.env.DB, tenantId, id), getActiveBuild(c.env.DB, tenantId, id)]);
    const active = versions.find((v) => v.version === index.activeVersion && v.state === "ready");
    const live = await liveIndexState({ env: c.env, fetcher, tenant: tenantId, index, active, signal: c.req.raw.signal });
    return c.json<z.infer<typeof indexDetail>>({
      ...summary(index),
      ...live,
      versions: versions.map(({ version, state, docCount, createdAt, coveredSeq, kind }) => ({ version, state, docCount, createdAt, coveredSeq, kind })),
      activeBuild,
    });
  });

  indexRoutes.delete("/:id", requireApiKey("manage"), async (c) => {
    const { id } = parseInput(indexParams, c.req.param(), "path");
    const { tenantId } = c.get("auth");
    const deleted = await softDeleteIndex(c.env.DB, tenantId, id);
    if (deleted === null) throw notFound(`index ${id}`);
    // Searches and reads are 404 from now (D1). The index's writer refuses writes and, from its alarm,
    // cancels its build and deletes every stored object (living/maintenance.ts destroyIndex).
    await indexWriterStub(c.env, tenantId, id).destroy(tenantId, id);
    return c.json<z.infer<typeof deletedIndex>>({ id: deleted.id, status: "deleted", deletedAt: deleted.deletedAt! });
  });

  return indexRoutes;
}

export const indexRoutes = createIndexRoutes();

export const indexRouteDocs: RouteDoc[] = [
  {
    method: "post",
    path: "/v1/indexes",
    summary: "Create an index",
    tags: ["indexes"],
    auth: "apiKey",
    scopes: ["manage"],
    body: createIndexBody,
    responses: { 201: { description: "The new, empty index", schema: indexSummary }, 409: { description: "The id is taken (or belonged to a deleted index)" } },
  },
  {
    method: "get",
    path: "/v1/indexes",
    summary: "List this tenant's indexes",
    tags: ["indexes"],
    auth: "apiKey",
    scopes: ["search", "manage"],
    responses: { 200: { description: "The tenant's live indexes, by id", schema: indexList } },
  },
  {
    method: "get",
    path: "/v1/indexes/{id}",
    summary: "Get an index: status, active version, live documents, write and compaction state, versions",
    description:
      "docCount, segments and pendingDocs come from the index's owner GPU worker (stateSource \"worker\"); when no worker answers they are " +
      "D1's figures (stateSource \"catalog\": docCount of the active version, its segment count, and the writer's uncompacted upserts).",
    tags: ["indexes"],
    auth: "apiKey",
    scopes: ["search", "manage"],
    params: indexParams,
    responses: { 200: { description: "The index", schema: indexDetail }, 404: { description: "No such index for this tenant" } },
  },
  {
    method: "delete",
    path: "/v1/indexes/{id}",
    summary: "Delete an index: 404 for searches at once; every stored object (versions, WAL, uploads) is deleted within 60 s",
    tags: ["indexes"],
    auth: "apiKey",
    scopes: ["manage"],
    params: indexParams,
    responses: { 200: { description: "The deleted index", schema: deletedIndex }, 404: { description: "No such index for this tenant" } },
  },
];
