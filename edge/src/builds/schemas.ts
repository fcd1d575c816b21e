/** The public build request: an upload plus the worker's build options (buildRequestSchema, minus what the edge fills in). */
import { z } from "zod";
import { buildRequestSchema } from "../../../shared/api/worker-api.ts";
import { FILE_NAME_PATTERN } from "../uploads/schemas.ts";

const fileName = z.string().regex(FILE_NAME_PATTERN, "must name a file of the upload");

/** Inputs by upload file name; the edge turns names into the tenant's S3 keys. */
export const publicBuildInputSchema = z.discriminatedUnion("format", [
  z.strictObject({ format: z.literal("jsonl"), file: fileName }),
  z.strictObject({ format: z.literal("npy"), file: fileName, idsFile: fileName }),
]);

export const buildBodySchema = buildRequestSchema
  .omit({ tenant: true, index: true, version: true, inputs: true })
  .extend({
    uploadId: z.string().regex(/^u[0-9a-f]{24}$/, "uploadId must be an id returned by POST /uploads"),
    /** Default: every file of the upload, as JSONL (names ending .jsonl or .jsonl.gz). */
    inputs: z.array(publicBuildInputSchema).min(1).max(1_000).optional(),
  })
  .strict();
export type BuildBody = z.infer<typeof buildBodySchema>;

export const buildParamsSchema = z.object({ id: z.string(), buildId: z.string().regex(/^b[0-9a-f]{24}$/, "not a build id") });
