/** Request and response schemas of /v1/indexes. */
import { z } from "zod";
import { indexId } from "../../../shared/api/worker-api.ts";

export const createIndexBody = z.strictObject({ id: indexId });
export const indexParams = z.strictObject({ id: indexId });

export const indexSummary = z.object({
  id: z.string(),
  status: z.enum(["empty", "ready"]).describe("empty until a build succeeds"),
  activeVersion: z.number().int().nullable().describe("the version searches use"),
  docCount: z.number().int().describe("documents in the active version"),
  createdAt: z.string(),
});

export const indexVersion = z.object({
  version: z.number().int(),
  state: z.enum(["building", "ready", "failed"]),
  docCount: z.number().int(),
  createdAt: z.string(),
});

export const indexDetail = indexSummary.extend({
  versions: z.array(indexVersion),
  activeBuild: z.object({ id: z.string(), state: z.string(), version: z.number().int() }).nullable().describe("the build in progress, if any"),
});

export const indexList = z.object({ indexes: z.array(indexSummary) });

export const deletedIndex = z.object({
  id: z.string(),
  status: z.literal("deleted"),
  deletedAt: z.string(),
});
