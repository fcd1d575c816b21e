/** Request and response schemas of the operator API (/v1/admin). */
import { z } from "zod";
import { tenantId } from "../../../shared/api/worker-api.ts";
import { KEY_ID_PATTERN } from "../auth/api-key.ts";
import { SCOPES } from "../db/api-keys.ts";

export const scopeSchema = z.enum(SCOPES);

export const createTenantBody = z.strictObject({
  id: tenantId,
  name: z.string().trim().min(1, "name must not be empty").max(200),
});

export const createKeyBody = z.strictObject({
  scopes: z
    .array(scopeSchema)
    .min(1, "give at least one scope")
    .refine((scopes) => new Set(scopes).size === scopes.length, "scopes must not repeat"),
  name: z.string().trim().min(1).max(100).optional(),
});

export const tenantParams = z.strictObject({ tenant: tenantId });
export const keyParams = z.strictObject({
  tenant: tenantId,
  keyId: z.string().regex(KEY_ID_PATTERN, `key id must match ${KEY_ID_PATTERN.source}`),
});

export const tenantResponse = z.object({
  id: z.string(),
  name: z.string(),
  createdAt: z.string(),
  disabled: z.boolean(),
});

/** A key as listed: never the secret or its hash. */
export const apiKeyResponse = z.object({
  id: z.string(),
  tenantId: z.string(),
  name: z.string().nullable(),
  prefix: z.string().describe("the first characters of the key, to tell keys apart"),
  scopes: z.array(scopeSchema),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
});

export const createdKeyResponse = apiKeyResponse.extend({
  key: z.string().describe("the API key; shown only in this response, store it now"),
});

export const keyListResponse = z.object({ keys: z.array(apiKeyResponse) });
