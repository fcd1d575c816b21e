/**
 * Public bodies of POST /v1/qnet and POST /v1/rerank: the worker's schemas (shared/api/worker-api.ts)
 * without `tenant` (the edge takes it from the API key; a client sending it is refused as an unknown
 * key) and, for rerank, without `version` (the edge resolves the index's active version, as search does).
 */
import { z } from "zod";
import { qnetRequestSchema, rerankRequestSchema } from "../../../shared/api/worker-api.ts";

const { tenant: _qnetTenant, ...qnetShape } = qnetRequestSchema.shape;
export const publicQNetSchema = z.strictObject(qnetShape);
export type PublicQNet = z.infer<typeof publicQNetSchema>;

// rerankRequestSchema carries a refinement, which zod forbids .omit() on; rebuild it from its shape.
const { tenant: _rerankTenant, version: _version, ...rerankShape } = rerankRequestSchema.shape;
export const publicRerankSchema = z.strictObject(rerankShape).refine((r) => (r.documents ? !r.ids && !r.index : !!r.ids && !!r.index), {
  message: "give either documents, or ids with index (its active version is used)",
});
export type PublicRerank = z.infer<typeof publicRerankSchema>;

/** A q-net request is one short query. */
export const QNET_BODY_LIMIT_BYTES = 16 * 1024;
/** Rerank texts: up to LIMITS.rerankDocsMax documents; 8 MiB keeps one request's embedding work bounded. */
export const RERANK_BODY_LIMIT_BYTES = 8 * 2 ** 20;
