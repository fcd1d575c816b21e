/**
 * Docs for the data-plane routes (uploads, builds, search, q-nets, rerank). Request schemas are
 * imported from the routers that validate with them (uploads/schemas.ts, builds/schemas.ts,
 * search/request.ts, query-model/request.ts), so the docs follow them. Response schemas mirror what those
 * routers send (uploads/routes.ts, builds/routes.ts buildView, search/render.ts publicResult,
 * query-model/routes.ts).
 */
import { z } from "zod";
import { indexId } from "../../../shared/api/worker-api.ts";
import { buildBodySchema, buildParamsSchema } from "../builds/schemas.ts";
import { publicQNetSchema, publicRerankSchema } from "../query-model/request.ts";
import { FILTER_DESCRIPTION, publicSearchSchema } from "../search/request.ts";
import { uploadBodySchema } from "../uploads/schemas.ts";
import type { RouteDoc } from "./route-doc.ts";

const indexParams = z.strictObject({ id: indexId });
const buildParams = buildParamsSchema.extend({ id: indexId });

// The query-string form: q is the query, fields is comma-separated; the rest are publicSearchSchema's.
const { query, fields: _fields, filter: _filter, ...searchOptions } = publicSearchSchema.shape;
const searchQueryString = z.object({
  q: query,
  fields: z.string().optional().describe("stored fields to return, comma-separated"),
  filter: z.string().optional().describe(`the filter as URL-encoded JSON (filter=${encodeURIComponent('{"field":"year","op":"gte","value":2000}')}). ${FILTER_DESCRIPTION}`),
  ...searchOptions,
});

const hit = z.object({ id: z.string(), score: z.number(), fields: z.record(z.string(), z.unknown()).optional() });
const searchResult = z.object({
  hits: z.array(hit).describe("best first"),
  stats: z.object({
    docsScored: z.number(),
    iterations: z.number(),
    shardsSearched: z.number(),
    ms: z.object({ queue: z.number(), encode: z.number(), search: z.number(), total: z.number() }),
    plan: z
      .enum(["filtered-walk", "filtered-exhaustive"])
      .optional()
      .describe('filtered searches only: "filtered-walk" when any shard walked the graph (non-matching rows never enter the top-k), "filtered-exhaustive" when every shard scored its few matching rows exhaustively'),
  }),
  partial: z.boolean().describe("true when some shards did not answer"),
  missingShards: z.array(z.string()),
  version: z.number().int().describe("the index version searched"),
});
const searchResponses = {
  200: {
    description:
      "Hits, best first. With `stream: true` the answer streams as frames (Accept: application/x-ndjson, text/event-stream or application/msgpack); `Accept: application/msgpack` without streaming gives one msgpack `result` frame. " +
      "`consistency: strong` (the default) sees every write acknowledged before the search started; `eventual` searches the compacted segments only (faster; on an index never built it still reads the written documents). " +
      "Headers: `x-index-version` (the version searched, 0 when never built) and `x-index-head-seq` (the highest write seq the answer reflects).",
    schema: searchResult,
  },
  400: {
    description:
      "Invalid request (an invalid `filter`: the message names the filter path and field, e.g. `filter.and[1].field: field \"author\" is not declared for filtering`); also `search_too_expensive` (entryPoints/ncandidates cost more than the tenant's SEARCH_CONCURRENCY_PER_TENANT units: the message names the bounds) and `answer_too_large` (ask for fewer hits or stored fields)",
  },
  404: { description: "No such index" },
  409: { description: "`index_not_ready`: the index has neither a built version nor any written document" },
  429: { description: "Over the key's request rate (`rate_limited`) or the tenant's searches in flight (`too_many_concurrent_searches`); see Retry-After" },
  502: { description: "A search worker refused the request" },
  503: { description: "`workers_unavailable`: no GPU worker answered for any shard (some missing is a 200 with `partial: true`); see Retry-After" },
} as const;

const uploadResponse = z.object({
  id: z.string(),
  expiresAt: z.string(),
  files: z.array(
    z.object({ name: z.string(), bytes: z.number().int(), key: z.string(), method: z.literal("PUT"), url: z.string(), headers: z.record(z.string(), z.string()) }),
  ),
});

const buildView = z.object({
  id: z.string(),
  index: z.string(),
  version: z.number().int(),
  uploadId: z.string().nullable(),
  state: z.string(),
  progress: z.record(z.string(), z.unknown()),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  workerReachable: z.literal(false).optional().describe("present when the worker could not be polled this time"),
});
const cancelledBuildView = buildView.extend({
  workerStopped: z.boolean().nullable().describe("whether the GPU worker confirmed it stopped the job; null when no worker had taken it yet"),
});

const rerankResponse = z.object({
  scores: z.array(z.object({ id: z.string(), score: z.number() })).describe("best first"),
  missing: z.array(z.string()).describe("requested ids the index version does not hold"),
});

const manage = { tags: ["indexes"], auth: "apiKey", scopes: ["manage"] } as const;
const search = { tags: ["search"], auth: "apiKey", scopes: ["search"] } as const;

export const searchApiRouteDocs: RouteDoc[] = [
  {
    ...manage,
    method: "post",
    path: "/v1/indexes/{id}/uploads",
    summary: "Start an upload: one presigned PUT URL per file (JSONL, optionally gzipped, or npy)",
    params: indexParams,
    body: uploadBodySchema,
    responses: { 201: { description: "The upload id and one presigned PUT per file", schema: uploadResponse }, 404: { description: "No such index" } },
  },
  {
    ...manage,
    method: "post",
    path: "/v1/indexes/{id}/builds",
    summary: "Build a new index version from an upload",
    params: indexParams,
    body: buildBodySchema,
    responses: {
      202: { description: "The build, dispatched to a GPU worker", schema: buildView },
      404: { description: "No such index or upload" },
      409: { description: "A build of this index is already running" },
      429: { description: "`tenant_build_limit`: the tenant already holds MAX_BUILDS_PER_TENANT builds in progress; see Retry-After" },
      502: { description: "A GPU worker refused the build (`upstream_rejected`); the build is failed" },
      503: { description: "No GPU worker accepted the build (`workers_unavailable`), or it could not be recorded (`dispatch_failed`); the build is failed; see Retry-After" },
    },
  },
  {
    ...manage,
    method: "post",
    path: "/v1/indexes/{id}/builds/{buildId}/cancel",
    summary: "Cancel a build: the GPU worker stops its job and the build ends `cancelled`",
    description: "The build is cancelled even when its worker cannot be reached (`workerStopped: false`); its version is never activated.",
    params: buildParams,
    responses: {
      200: { description: "The cancelled build", schema: cancelledBuildView },
      404: { description: "No such build" },
      409: { description: "`build_finished`: the build has already ended" },
    },
  },
  {
    ...manage,
    scopes: ["search", "manage"],
    method: "get",
    path: "/v1/indexes/{id}/builds/{buildId}",
    summary: "Get a build's state and progress (a finished build activates its version)",
    params: buildParams,
    responses: { 200: { description: "The build", schema: buildView }, 404: { description: "No such build" } },
  },
  { ...search, method: "get", path: "/v1/indexes/{id}/search", summary: "Search an index (query-string form)", params: indexParams, query: searchQueryString, responses: searchResponses },
  {
    ...search,
    method: "post",
    path: "/v1/indexes/{id}/search",
    summary: "Search an index (JSON body, or one msgpack map with Content-Type: application/msgpack)",
    params: indexParams,
    body: publicSearchSchema,
    responses: searchResponses,
  },
  {
    ...search,
    method: "post",
    path: "/v1/qnet",
    summary: "Encode a query into its q-net (the query's neural scoring function)",
    description:
      "Answers the q-net as `application/msgpack` bytes in the shared q-net wire format (shared/FORMATS.md, `hypencoder.qnet` v1). " +
      "Clients run it on document embeddings with shared/qnet/evaluate.ts (`decodeQNet` from shared/qnet/wire.ts, then `scoreQNet`), " +
      "scoring documents locally exactly as the workers do. `dtype: float16` halves the size.",
    body: publicQNetSchema,
    responses: {
      200: { description: "The q-net, shared q-net wire format (shared/FORMATS.md)", contentType: "application/msgpack" },
      502: { description: "A GPU worker refused the request" },
      503: { description: "No GPU worker answered; see Retry-After" },
    },
  },
  {
    ...search,
    method: "post",
    path: "/v1/rerank",
    summary: "Score documents against a query: given texts, or ids of documents in an index (its active version)",
    description:
      "Give either `documents` (texts, embedded by the worker), or `ids` with `index`: the edge reads the index's active version. " +
      "JSON answers `{scores, missing}`. With `Accept: application/msgpack` the answer is msgpack frames (shared/api/frames.ts): " +
      "a `qnet` frame first when `includeQNet` (only allowed with msgpack), then the `scores` frame.",
    body: publicRerankSchema,
    responses: {
      200: { description: "Scores, best first; `missing` lists ids the index did not hold", schema: rerankResponse },
      404: { description: "No such index (rerank by ids)" },
      409: { description: "The index has no built version yet (rerank by ids)" },
      502: { description: "A GPU worker refused the request" },
      503: { description: "No GPU worker answered; see Retry-After" },
    },
  },
];
