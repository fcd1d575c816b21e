/**
 * PROVISIONAL docs for the routes owned by the uploads/builds/search modules, written from the
 * GPU worker contract (shared/api/worker-api.ts) before those routers existed. When a router lands
 * it should export its own RouteDoc list built from the schemas it validates with; then replace
 * the matching entries here with that list in ./all-routes.ts (the openapi test checks that every
 * route in this list is still documented, so nothing silently disappears).
 */
import { z } from "zod";
import { buildRequestSchema, indexId, LIMITS, qnetRequestSchema, rerankRequestSchema, searchRequestSchema } from "../../../shared/api/worker-api.ts";
import type { RouteDoc } from "./route-doc.ts";

const indexParams = z.strictObject({ id: indexId });
const buildParams = z.strictObject({ id: indexId, buildId: z.string().min(1).max(64) });

/** The edge fills in tenant (from the key), index (from the path), version and shards (routing). */
const publicSearchBody = searchRequestSchema.omit({ tenant: true, index: true, version: true, shards: true });
const publicSearchQuery = z.strictObject({
  q: z.string().min(1).max(LIMITS.queryChars).describe("the query text"),
  k: z.coerce.number().int().min(1).max(LIMITS.kMax).optional().describe("hits to return (default 10)"),
});

const hit = z.object({ id: z.string(), score: z.number(), fields: z.record(z.string(), z.unknown()).optional() });
const searchResult = z.object({
  hits: z.array(hit),
  stats: z.object({
    docsScored: z.number(),
    iterations: z.number(),
    shardsSearched: z.number(),
    ms: z.object({ queue: z.number(), encode: z.number(), search: z.number(), total: z.number() }),
  }),
  partial: z.boolean().describe("true when some shards did not answer"),
  missingShards: z.array(z.string()),
});

// rerankRequestSchema carries a refinement, which zod forbids .omit() on; rebuild it from its shape.
const { tenant: _rerankTenant, ...rerankShape } = rerankRequestSchema.shape;
const publicRerankBody = z.strictObject(rerankShape).describe("give either documents, or ids with index and version");
const { tenant: _qnetTenant, ...qnetShape } = qnetRequestSchema.shape;
const publicQNetBody = z.strictObject(qnetShape);

const uploadBody = z.strictObject({
  files: z
    .array(z.strictObject({ name: z.string().min(1).max(256), bytes: z.number().int().positive(), sha256: z.string().regex(/^[0-9a-f]{64}$/).optional() }))
    .min(1),
});
const buildBody = buildRequestSchema
  .omit({ tenant: true, index: true, version: true, inputs: true })
  .extend({ uploadId: z.string().min(1).max(64).describe("the upload whose files to build from") });
const buildStatus = z.object({
  id: z.string(),
  index: z.string(),
  version: z.number().int(),
  state: z.string(),
  progress: z.record(z.string(), z.number()),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});

const search = { tags: ["search"], auth: "apiKey", scopes: ["search"] } as const;
const manage = { tags: ["indexes"], auth: "apiKey", scopes: ["manage"] } as const;

export const provisionalRouteDocs: RouteDoc[] = [
  {
    ...manage,
    method: "post",
    path: "/v1/indexes/{id}/uploads",
    summary: "Start an upload: presigned PUT URLs for the documents (JSONL, optionally gzipped)",
    params: indexParams,
    body: uploadBody,
    responses: { 201: { description: "The upload id and one presigned PUT per file", schema: z.object({ id: z.string(), files: z.array(z.unknown()), expiresAt: z.string() }) }, 404: { description: "No such index" } },
  },
  {
    ...manage,
    method: "post",
    path: "/v1/indexes/{id}/builds",
    summary: "Build a new index version from an upload",
    params: indexParams,
    body: buildBody,
    responses: { 202: { description: "The build, queued", schema: buildStatus }, 404: { description: "No such index or upload" }, 409: { description: "A build of this index is already running" } },
  },
  {
    ...manage,
    scopes: ["search", "manage"],
    method: "get",
    path: "/v1/indexes/{id}/builds/{buildId}",
    summary: "Get a build's state and progress",
    params: buildParams,
    responses: { 200: { description: "The build", schema: buildStatus }, 404: { description: "No such build" } },
  },
  {
    ...search,
    method: "get",
    path: "/v1/indexes/{id}/search",
    summary: "Search an index (query string form)",
    params: indexParams,
    query: publicSearchQuery,
    responses: { 200: { description: "Hits, best first", schema: searchResult }, 404: { description: "No such index, or it has no ready version" } },
  },
  {
    ...search,
    method: "post",
    path: "/v1/indexes/{id}/search",
    summary: "Search an index",
    description: "With `Accept: application/msgpack` the answer streams as msgpack frames (shared/api/worker-api.ts Frame).",
    params: indexParams,
    body: publicSearchBody,
    responses: { 200: { description: "Hits, best first", schema: searchResult }, 404: { description: "No such index, or it has no ready version" } },
  },
  {
    ...search,
    method: "post",
    path: "/v1/qnet",
    summary: "Encode a query into its q-net (shared/FORMATS.md wire format)",
    body: publicQNetBody,
    responses: { 200: { description: "The q-net as msgpack", contentType: "application/msgpack" } },
  },
  {
    ...search,
    method: "post",
    path: "/v1/rerank",
    summary: "Score documents (texts, or ids in an index version) against a query",
    body: publicRerankBody,
    responses: {
      200: { description: "Scores, best first", schema: z.object({ scores: z.array(z.object({ id: z.string(), score: z.number() })), missing: z.array(z.string()) }) },
    },
  },
];
