/**
 * POST /v1/indexes/:id/uploads (scope "manage"): records an upload and returns one presigned S3 PUT
 * per declared file, under the tenant's upload prefix (shared/index/keys.ts uploadPrefix). The edge
 * never carries document bytes: clients PUT straight to S3, and the build checks what arrived.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { z } from "zod";
import { indexId } from "../../../shared/api/worker-api.ts";
import { uploadPrefix } from "../../../shared/index/keys.ts";
import { requireApiKey } from "../auth/require-api-key.ts";
import { getIndex } from "../db/indexes.ts";
import type { EdgeEnv, S3Bindings } from "../env.ts";
import { ApiError, notFound } from "../errors.ts";
import { integerSetting } from "../integer-setting.ts";
import { parseInput, readJson } from "../http/validate.ts";
import { presignPut } from "./presign.ts";
import { S3NotConfiguredError, s3ClientFor } from "./s3-client.ts";
import { type StoredUploadFile, uploadBodySchema } from "./schemas.ts";
import { insertUpload } from "../db/uploads.ts";

export const DEFAULT_UPLOAD_URL_TTL_SECONDS = 900;
export function uploadUrlTtlSeconds(value: string | undefined): number {
  return integerSetting("UPLOAD_URL_TTL_SECONDS", value, DEFAULT_UPLOAD_URL_TTL_SECONDS, { min: 60, max: 3600 });
}

/** Upload ids are ID_PATTERN-safe: "u" + 24 random hex digits. */
export function newUploadId(): string {
  return `u${[...crypto.getRandomValues(new Uint8Array(12))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The S3 client for a request, or a 503 that names no setting values. */
export function s3For(env: S3Bindings) {
  try {
    return s3ClientFor(env);
  } catch (error) {
    if (!(error instanceof S3NotConfiguredError)) throw error;
    console.error(error.message);
    throw new ApiError(503, "storage_unavailable", "object storage is not configured");
  }
}

const pathSchema = z.object({ id: indexId });

export function createUploadRoutes(options: { auth?: MiddlewareHandler<EdgeEnv> } = {}): Hono<EdgeEnv> {
  const router = new Hono<EdgeEnv>();
  router.post("/:id/uploads", options.auth ?? requireApiKey("manage"), async (c) => {
    const { id: index } = parseInput(pathSchema, c.req.param(), "path");
    const body = await readJson(c, uploadBodySchema);
    const tenant = c.get("auth").tenantId;
    if (!(await getIndex(c.env.DB, tenant, index))) throw notFound(`index ${index}`);
    const { client, settings } = s3For(c.env);
    const ttl = uploadUrlTtlSeconds(c.env.UPLOAD_URL_TTL_SECONDS);
    const id = newUploadId();
    const prefix = uploadPrefix(tenant, id);
    const signingDate = new Date();
    const files: StoredUploadFile[] = body.files.map((f) => ({ ...f, key: `${prefix}${f.name}` }));
    const presigned = await Promise.all(
      files.map((f) => presignPut(client, { bucket: settings.bucket, key: f.key, bytes: f.bytes, sha256: f.sha256, md5: f.md5, expiresInSeconds: ttl, signingDate })),
    );
    const expiresAt = new Date(signingDate.getTime() + ttl * 1000).toISOString();
    await insertUpload(c.env.DB, { tenantId: tenant, id, indexId: index, files, expiresAt });
    return c.json(
      {
        id,
        expiresAt,
        files: files.map((f, i) => ({ name: f.name, bytes: f.bytes, key: f.key, method: "PUT", url: presigned[i]!.url, headers: presigned[i]!.headers })),
      },
      201,
      // The URLs are bearer credentials for those keys until they expire.
      { "cache-control": "no-store" },
    );
  });
  return router;
}

export const uploadRoutes = createUploadRoutes();
