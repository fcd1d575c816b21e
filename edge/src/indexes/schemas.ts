/** Request and response schemas of /v1/indexes. */
import { z } from "zod";
import { indexId } from "../../../shared/api/worker-api.ts";
import { FIELD_LIMITS, FIELD_NAME_PATTERN, FIELD_TYPES, fieldSchemaSchema } from "../../../shared/filter/schema.ts";

/** The declared filterable fields as shown (and, for OpenAPI, as given): name → type. */
const fieldsShape = z
  .record(z.string(), z.enum(FIELD_TYPES))
  .describe('filterable fields and their types, e.g. {"section": "string", "year": "number", "tags": "string[]", "free": "boolean"}; fixed at creation');

/**
 * fieldSchemaSchema, after refusing a "__proto__" key: JSON.parse makes it an own property, but a
 * zod record drops it, so it would otherwise vanish silently instead of being the 400 it is.
 */
const declaredFields = z
  .unknown()
  .superRefine((value, ctx) => {
    if (typeof value === "object" && value !== null && Object.hasOwn(value, "__proto__")) {
      ctx.addIssue({ code: "custom", path: ["__proto__"], message: 'field name "__proto__" is not allowed' });
    }
  })
  .pipe(fieldSchemaSchema);

export const createIndexBody = z.strictObject({
  id: indexId,
  /** Validated by fieldSchemaSchema (names, types, at most 64); the metadata is its OpenAPI form. */
  fields: declaredFields.optional().meta({
    description: `${fieldsShape.description!}. At most ${FIELD_LIMITS.maxFields} fields; names match ${FIELD_NAME_PATTERN.source} ("id" is reserved)`,
    additionalProperties: { type: "string", enum: [...FIELD_TYPES] },
  }),
});
export const indexParams = z.strictObject({ id: indexId });

export const indexSummary = z.object({
  id: z.string(),
  status: z.enum(["empty", "ready"]).describe("empty until a build succeeds"),
  activeVersion: z.number().int().nullable().describe("the version searches use"),
  docCount: z.number().int().describe("documents in the active version"),
  createdAt: z.string(),
  fields: fieldsShape,
});

export const indexVersion = z.object({
  version: z.number().int(),
  state: z.enum(["building", "ready", "failed"]),
  docCount: z.number().int(),
  createdAt: z.string(),
  coveredSeq: z.number().int().describe("the write seq the version contains"),
  kind: z.enum(["build", "compaction"]).describe("a bulk build from an upload, or a compaction of written documents"),
});

/** The living index's state (indexes/live-state.ts). */
export const liveState = z.object({
  docCount: z.number().int().describe("live documents: the active version's, minus deleted or replaced ones, plus written ones not yet compacted"),
  headSeq: z.number().int().describe("the highest acknowledged write seq (0: never written)"),
  compactedSeq: z.number().int().describe("the write seq the active version contains; writes after it are searched from the log"),
  segments: z.number().int().describe("graph segments of the active version"),
  pendingDocs: z.number().int().describe("documents written but not yet compacted into a graph segment"),
  stateSource: z
    .enum(["worker", "catalog"])
    .describe('"worker": counted by the index\'s GPU worker; "catalog": no worker answered, so docCount is the active version\'s and pendingDocs the uncompacted upserts'),
  writer: z
    .object({
      inDoubtSeq: z.number().int().nullable().describe("a write whose outcome is not yet known; the next write settles it"),
      pendingBatches: z.number().int().describe("write batches not yet compacted"),
      tailSince: z.string().nullable().describe("when the oldest uncompacted batch was acknowledged"),
    })
    .nullable()
    .describe("the index writer's state (null if it could not be reached)"),
});

export const indexDetail = indexSummary.extend({
  ...liveState.shape,
  versions: z.array(indexVersion),
  activeBuild: z.object({ id: z.string(), state: z.string(), version: z.number().int() }).nullable().describe("the build in progress, if any"),
});

export const indexList = z.object({ indexes: z.array(indexSummary) });

export const deletedIndex = z.object({
  id: z.string(),
  status: z.literal("deleted"),
  deletedAt: z.string(),
});
