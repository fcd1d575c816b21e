/** Request and response schemas of /v1/indexes/:id/documents (the write body is shared: living-api.ts). */
import { z } from "zod";
import { WRITE_LIMITS } from "../../../shared/api/living-api.ts";
import { indexId } from "../../../shared/api/worker-api.ts";

export const documentsParams = z.strictObject({ id: indexId });
export const documentParams = z.strictObject({
  id: indexId,
  docId: z.string().min(1, "the document id must not be empty").max(WRITE_LIMITS.idCharsMax, `a document id has at most ${WRITE_LIMITS.idCharsMax} characters`),
});

/** Visible ASCII (no spaces or controls), 1-255 characters, like the Stripe and IETF draft keys. */
export const IDEMPOTENCY_KEY_PATTERN = new RegExp(`^[\\x21-\\x7e]{1,${WRITE_LIMITS.idempotencyKeyCharsMax}}$`);

export const writeAnswer = z.object({
  seq: z.number().int().positive().describe("the batch's write seq: strictly increasing per index; every search that starts after this answer sees the batch"),
  upserted: z.number().int().describe("documents written (an existing id is replaced)"),
  deleted: z.number().int().describe("ids deleted (unknown ids count too)"),
});

export const documentAnswer = z.object({
  id: z.string(),
  fields: z.record(z.string(), z.unknown()).describe("every stored field of the live document, text included"),
});

/** What the worker's POST /v1/documents/get answers, checked before it is passed on. */
export const workerDocumentAnswer = z.object({ id: z.string(), fields: z.record(z.string(), z.unknown()) });
