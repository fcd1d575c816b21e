/**
 * /v1/indexes/:id/documents: writes and reads of single documents (README "Living indexes").
 *
 *   POST /v1/indexes/:id/documents        (scope manage)  {"upsert": [...], "delete": [...]} → {seq, upserted, deleted}
 *   GET  /v1/indexes/:id/documents/:docId (scope search)  → {id, fields} of the live document, or 404
 *
 * A write goes to the index's IndexWriter Durable Object (living/index-writer.ts), which answers only
 * once the batch is durable in S3 and its seq committed. The caller is authenticated (and the index
 * found) before a byte of the body is read. A read goes to the index's owner worker with the active
 * version and the whole tail after it, so it sees every acknowledged write.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { type UpsertDocument, WRITE_LIMITS, writeBodySchema } from "../../../shared/api/living-api.ts";
import { checkDocumentFields, type FieldSchema } from "../../../shared/filter/schema.ts";
import { requireApiKey } from "../auth/require-api-key.ts";
import { getIndex } from "../db/indexes.ts";
import type { EdgeEnv } from "../env.ts";
import { ApiError, notFound, WorkerRejectedError } from "../errors.ts";
import { parseInput, readJson } from "../http/validate.ts";
import { indexWriterStub } from "../living/index-writer.ts";
import type { RouteDoc } from "../openapi/route-doc.ts";
import { callOwner } from "../routing/owner-call.ts";
import { indexOwnerKey } from "../routing/rendezvous.ts";
import { defaultFetcher, type Fetcher } from "../routing/worker-client.ts";
import { workerPoolFromEnv } from "../routing/worker-pool.ts";
import { d1SearchCatalog, type SearchCatalog, tailToRead } from "../search/catalog.ts";
import { documentAnswer, documentParams, documentsParams, IDEMPOTENCY_KEY_PATTERN, workerDocumentAnswer, writeAnswer } from "./schemas.ts";

export interface DocumentDeps {
  fetcher?: Fetcher;
  catalog?: SearchCatalog;
  /** Authentication per scope; requireApiKey in production, a stub in unit tests. */
  auth?: (scope: "manage" | "search") => MiddlewareHandler<EdgeEnv>;
}

export function createDocumentRoutes(deps: DocumentDeps = {}): Hono<EdgeEnv> {
  const fetcher = deps.fetcher ?? defaultFetcher;
  const catalog = deps.catalog ?? d1SearchCatalog;
  const auth = deps.auth ?? ((scope) => requireApiKey(scope));
  const router = new Hono<EdgeEnv>();

  router.post("/:id/documents", auth("manage"), async (c) => {
    const { id: index } = parseInput(documentsParams, c.req.param(), "path");
    const tenant = c.get("auth").tenantId;
    const idempotencyKey = idempotencyKeyOf(c);
    const record = await getIndex(c.env.DB, tenant, index);
    if (record === null) throw notFound(`index ${index}`);
    const body = await readJson(c, writeBodySchema, { maxBytes: WRITE_LIMITS.bodyBytesMax });
    checkDeclaredFields(record.fields, body.upsert);
    const result = await indexWriterStub(c.env, tenant, index).write({ tenant, index, upsert: body.upsert, delete: body.delete, ...(idempotencyKey ? { idempotencyKey } : {}) });
    if (!result.ok) {
      throw new ApiError(result.status, result.code, result.message, result.retryAfterSeconds === undefined ? undefined : { "retry-after": String(result.retryAfterSeconds) });
    }
    return c.json(result.answer, 200, result.replayed ? { "idempotent-replayed": "true" } : {});
  });

  router.get("/:id/documents/:docId", auth("search"), async (c) => {
    const { id: index, docId } = parseInput(documentParams, c.req.param(), "path");
    const tenant = c.get("auth").tenantId;
    const lookup = await catalog(c.env.DB, tenant, index);
    if (!lookup.ok && lookup.reason === "not_found") throw notFound(`index ${index}`);
    // Never built and never written: it holds no documents.
    if (!lookup.ok) throw notFound(`document ${docId}`);
    const active = lookup.active;
    const tail = tailToRead(active, "strong");
    const pool = workerPoolFromEnv(c.env);
    try {
      const { value } = await callOwner({
        key: indexOwnerKey(tenant, index),
        pool,
        fetcher,
        path: "/v1/documents/get",
        tenant,
        json: { tenant, index, version: active.version, ...(tail ? { tail } : {}), id: docId },
        accept: "application/json",
        signal: c.req.raw.signal,
        read: async (response) => workerDocumentAnswer.parse(await response.json()),
      });
      return c.json(value, 200, { "x-index-version": String(active.version), "x-index-head-seq": String(tail?.toSeq ?? active.coveredSeq) });
    } catch (error) {
      if (error instanceof WorkerRejectedError && error.status === 404) throw notFound(`document ${docId}`);
      throw error;
    }
  });

  return router;
}

/**
 * Every upsert's declared fields have their declared types (README "Filters"), or a 400 naming the
 * document and field, before anything is written: the batch is refused whole, never half applied.
 */
function checkDeclaredFields(schema: FieldSchema, upserts: readonly UpsertDocument[]): void {
  if (Object.keys(schema).length === 0) return;
  const problems: string[] = [];
  upserts.forEach((doc, i) => {
    for (const problem of checkDocumentFields(schema, doc)) problems.push(`body.upsert[${i}] (document ${JSON.stringify(doc.id)}): ${problem.message}`);
  });
  if (problems.length === 0) return;
  const shown = problems.slice(0, 5);
  if (problems.length > shown.length) shown.push(`and ${problems.length - shown.length} more`);
  throw new ApiError(400, "invalid_request", shown.join("; "));
}

/** The Idempotency-Key header, if given: 1-255 visible ASCII characters. */
function idempotencyKeyOf(c: Context): string | undefined {
  const value = c.req.header("idempotency-key");
  if (value === undefined) return undefined;
  if (!IDEMPOTENCY_KEY_PATTERN.test(value)) {
    throw new ApiError(400, "invalid_request", `header Idempotency-Key: 1 to ${WRITE_LIMITS.idempotencyKeyCharsMax} visible ASCII characters (no spaces)`);
  }
  return value;
}

export const documentRoutes = createDocumentRoutes();

export const documentRouteDocs: RouteDoc[] = [
  {
    method: "post",
    path: "/v1/indexes/{id}/documents",
    summary: "Upsert and delete documents",
    description:
      `Writes one batch: {"upsert": [{"id", "text", ...fields}], "delete": ["id", ...]} (either may be empty or absent, not both; ` +
      `at most ${WRITE_LIMITS.entriesMax} entries and ${WRITE_LIMITS.bodyBytesMax / 2 ** 20} MiB). Answers once the batch is durable; ` +
      "every search that starts after the answer sees it. Within a batch deletes apply first, then upserts; across batches the higher seq wins. " +
      "Send an Idempotency-Key header (1-255 visible ASCII characters) to make a retry safe: the same key and body replay the first answer " +
      "(header Idempotent-Replayed: true); the same key with another body is 409 idempotency_key_reused. Keys are remembered for 24 hours.",
    tags: ["documents"],
    auth: "apiKey",
    scopes: ["manage"],
    params: documentsParams,
    body: writeBodySchema,
    responses: {
      200: { description: "The batch is stored and visible", schema: writeAnswer },
      400: { description: "Invalid body or Idempotency-Key (the message names the field), or a declared filter field of the wrong type (the message names the document and field)" },
      404: { description: "No such index for this tenant" },
      409: { description: "idempotency_key_reused: the key was used with another body" },
      413: { description: "The body is over 8 MiB" },
      415: { description: "The body is not JSON" },
      503: { description: "`workers_unavailable`: no GPU worker confirmed the batch (Retry-After); it is not acknowledged — retry with the same Idempotency-Key, which never applies it twice" },
    },
  },
  {
    method: "get",
    path: "/v1/indexes/{id}/documents/{docId}",
    summary: "Read one live document",
    description: "Every stored field of the document as of every acknowledged write, text included.",
    tags: ["documents"],
    auth: "apiKey",
    scopes: ["search"],
    params: documentParams,
    responses: {
      200: { description: "The live document", schema: documentAnswer },
      404: { description: "No such index, or the document was deleted or never written" },
      503: { description: "No GPU worker answered (Retry-After)" },
    },
  },
];
