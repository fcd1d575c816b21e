/**
 * Living indexes: the public write body and the GPU worker's write, read-by-id, state, compaction
 * and sweep requests (zod, validated on the worker and built on the edge), beside worker-api.ts.
 *
 * The write path, end to end (docs in README "Living indexes"; bytes in shared/FORMATS.md):
 *   client → edge POST /v1/indexes/:id/documents → the index's IndexWriter Durable Object assigns the
 *   next seq → the index's rendezvous owner worker POST /v1/wal embeds the upserts and writes
 *   wal/<seq>.hwal create-if-absent → the DO commits D1 indexes.head_seq = seq → 200 {seq, …}.
 *
 * A search names the tail it must see: WAL batches (fromSeq, toSeq], where fromSeq is the searched
 * version's coveredSeq and toSeq the committed head (strong) — or no tail at all (eventual).
 */
import { z } from "zod";
import { fieldSchemaSchema } from "../filter/schema.ts";
import { ID_PATTERN } from "../index/keys.ts";

const id = (what: string) => z.string().regex(ID_PATTERN, `${what} must match ${ID_PATTERN.source}`);
const tenantId = id("tenant id");
const indexId = id("index id");
const seq = z.number().int().nonnegative();
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits");

export const WRITE_LIMITS = {
  /** Upserts plus deletes in one call. */
  entriesMax: 1_000,
  /** The body of one call (8 MiB). */
  bodyBytesMax: 8 * 2 ** 20,
  /** As for builds (gpu-worker/src/index/build/documents.ts). */
  idCharsMax: 512,
  textCharsMax: 1_000_000,
  /** Idempotency-Key header. */
  idempotencyKeyCharsMax: 255,
} as const;

/**
 * A document id: a non-empty string of at most 512 characters, or a safe integer (stored as its
 * decimal string), exactly as builds accept them.
 */
export const documentIdSchema = z
  .union([
    z.string().min(1, "id must not be empty").max(WRITE_LIMITS.idCharsMax, `id must be at most ${WRITE_LIMITS.idCharsMax} characters`),
    z.number().int().refine(Number.isSafeInteger, "an integer id must be a safe integer"),
  ])
  .transform((v) => String(v));

/** One upserted document: id, non-empty text, and any other fields (all stored, text included). */
export const upsertDocumentSchema = z
  .object({
    id: documentIdSchema,
    text: z
      .string()
      .max(WRITE_LIMITS.textCharsMax, `text must be at most ${WRITE_LIMITS.textCharsMax} characters`)
      .refine((t) => t.trim() !== "", "text must not be empty"),
  })
  .catchall(z.unknown());
export type UpsertDocument = z.infer<typeof upsertDocumentSchema>;

/** POST /v1/indexes/:id/documents */
export const writeBodySchema = z
  .object({
    upsert: z.array(upsertDocumentSchema).max(WRITE_LIMITS.entriesMax).default([]),
    delete: z.array(documentIdSchema).max(WRITE_LIMITS.entriesMax).default([]),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.upsert.length === 0 && b.delete.length === 0) ctx.addIssue({ code: "custom", message: "give at least one document to upsert or one id to delete" });
    if (b.upsert.length + b.delete.length > WRITE_LIMITS.entriesMax) {
      ctx.addIssue({ code: "custom", message: `at most ${WRITE_LIMITS.entriesMax} upserts and deletes in all per call, got ${b.upsert.length + b.delete.length}` });
    }
  });
export type WriteBody = z.infer<typeof writeBodySchema>;

/** The public answer: the batch is durable in S3 and visible to every search that starts after it. */
export interface WriteAnswer {
  seq: number;
  upserted: number;
  deleted: number;
}

/** A range of the WAL: batches with fromSeq < seq <= toSeq. */
export const tailRangeSchema = z
  .object({ fromSeq: seq, toSeq: seq })
  .strict()
  .refine((t) => t.toSeq >= t.fromSeq, { message: "tail.toSeq must be at least tail.fromSeq" });
export type TailRange = z.infer<typeof tailRangeSchema>;

/** The pseudo-shard id a search names to have the worker score the tail (build shards are s00000…). */
export const TAIL_SHARD_ID = "tail";

/**
 * POST /v1/wal: embed the upserts and write batch `seq` to wal/<seq>.hwal, create-if-absent.
 * `batchHash` is the SHA-256 of the canonical batch (shared/index/wal.ts batchHash): if the object
 * exists with the same hash the call succeeds (a retry), with another it is 409 `wal_conflict`.
 * An empty batch (`seal: true`, no upserts or deletes) voids a seq whose first write is in doubt.
 */
export const walWriteRequestSchema = z
  .object({
    tenant: tenantId,
    index: indexId,
    seq: z.number().int().positive(),
    batchHash: sha256,
    upsert: z.array(upsertDocumentSchema).max(WRITE_LIMITS.entriesMax),
    delete: z.array(documentIdSchema).max(WRITE_LIMITS.entriesMax),
    seal: z.boolean().default(false),
    docMaxLength: z.number().int().min(2).max(512).optional(),
  })
  .strict();
export type WalWriteRequest = z.infer<typeof walWriteRequestSchema>;

export interface WalWriteAnswer {
  seq: number;
  /** The batch's hash as stored (equals the request's unless sealing found a real batch). */
  batchHash: string;
  upserted: number;
  deleted: number;
  bytes: number;
  /** True when the object already existed (a retry, or a seal that lost to the real batch). */
  existed: boolean;
}

/** POST /v1/documents/get: the live document `id` as of version + tail (newest wins). 404 `document_not_found` otherwise. */
export const documentGetRequestSchema = z
  .object({
    tenant: tenantId,
    index: indexId,
    /** 0: no built version (the tail is everything). */
    version: seq,
    tail: tailRangeSchema.optional(),
    id: z.string().min(1).max(WRITE_LIMITS.idCharsMax),
  })
  .strict();
export type DocumentGetRequest = z.infer<typeof documentGetRequestSchema>;

export interface DocumentAnswer {
  id: string;
  fields: Record<string, unknown>;
}

/** POST /v1/index-state: live counts of version + tail, for GET /v1/indexes/:id. */
export const indexStateRequestSchema = z
  .object({ tenant: tenantId, index: indexId, version: seq, tail: tailRangeSchema.optional() })
  .strict();
export type IndexStateRequest = z.infer<typeof indexStateRequestSchema>;

export interface IndexStateAnswer {
  /** Live documents: segment rows not deleted or replaced, plus the tail's live upserts. */
  docCount: number;
  /** Live documents that are only in the tail (not yet compacted into a graph segment). */
  pendingDocs: number;
  /** Per segment: its rows (deleted ones included, as in the manifest) and how many of them are not live (bitmap or tail). */
  segments: { id: string; docCount: number; deletedDocs: number }[];
  coveredSeq: number;
  tailBatches: number;
}

/**
 * POST /v1/compactions: fold the tail (baseVersion's coveredSeq, toSeq] into a new segment of
 * `version` (reserved by the edge), rewrite deletion bitmaps, merge small segments, and write
 * versions/v<version>/manifest.json (format 2, coveredSeq = toSeq) last. Answers a BuildStatus;
 * poll and cancel it as a build (GET /v1/builds/:jobId, POST /v1/builds/:jobId/cancel).
 */
export const compactionRequestSchema = z
  .object({
    tenant: tenantId,
    index: indexId,
    /** The active version being compacted; 0 when the index was never built. */
    baseVersion: seq,
    version: z.number().int().positive(),
    toSeq: z.number().int().positive(),
    degree: z.number().int().min(2).max(256).optional(),
    dtype: z.enum(["float16", "float32"]).optional(),
    /** The index's declared filterable fields: new and merged segments get filter columns for them. */
    filterFields: fieldSchemaSchema.optional(),
  })
  .strict()
  .refine((r) => r.version > r.baseVersion, { message: "version must be newer than baseVersion" });
export type CompactionRequest = z.infer<typeof compactionRequestSchema>;

/**
 * POST /v1/sweep: delete what no kept version needs. With `everything`, every object under the
 * index's prefix and the listed uploads (the index was deleted). Otherwise: versions not in
 * keepVersions (except the objects a kept manifest references), WAL batches with seq <= walUpToSeq,
 * and the listed uploads. Never deletes a key that a kept version's manifest references.
 */
export const sweepRequestSchema = z
  .object({
    tenant: tenantId,
    index: indexId,
    everything: z.boolean().default(false),
    keepVersions: z.array(z.number().int().positive()).max(1_000).default([]),
    walUpToSeq: seq.default(0),
    uploads: z.array(id("upload id")).max(1_000).default([]),
    /**
     * Optional: the highest version reserved when the edge chose keepVersions. Folders of higher
     * versions are left alone: they were reserved since, and a build or compaction may be writing
     * them. Absent: no such guard.
     */
    versionsUpTo: seq.optional(),
  })
  .strict();
export type SweepRequest = z.infer<typeof sweepRequestSchema>;

export interface SweepAnswer {
  deletedObjects: number;
  keptObjects: number;
  ms: number;
}
