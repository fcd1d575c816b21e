/**
 * `manifest.json` of one index version: the model the embeddings came from, the graph, the stored
 * fields and the list of shards (segments) with their sizes and sha256s. Written LAST, after every
 * shard: a version exists only once its manifest does, so readers never see a half-written index.
 * Documented in shared/FORMATS.md.
 *
 * Format version 1 (builds): shard keys are relative to the VERSION prefix. Format version 2
 * (compactions of a living index): keys are relative to the INDEX prefix (keys.ts indexPrefix), so
 * a version can keep segments that earlier versions wrote, and a segment may carry a deletion
 * bitmap (deletion-bitmap.ts). Both record `coveredSeq`, the last write-ahead-log seq folded in
 * (v1 manifests that predate it: 0). This reader reads both.
 */
import * as z from "zod";
import { IndexFormatError } from "./errors.ts";
import { SHARD_DTYPES, SHARD_MAX_BYTES } from "./format.ts";
import { ID_PATTERN } from "./keys.ts";
import { fieldSchemaSchema } from "../filter/schema.ts";

export const INDEX_MANIFEST_FORMAT = "hypencoder.index";
/** The newest format this code writes (compactions); builds still write 1. */
export const INDEX_FORMAT_VERSION = 2;
export const INDEX_FORMAT_VERSIONS = [1, 2] as const;
/** The most of a row's degree slots reverse links may take; beyond half they would crowd out its kNN links. */
export const REVERSE_SHARE_MAX = 0.5;

const id = z.string().regex(ID_PATTERN, "expected 1-63 of [a-z0-9_-], starting with a letter or digit");
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits");
const count = z.number().int().nonnegative();

/** Relative to the version prefix, with no way out of it ("..", absolute paths, backslashes). */
const relativeKey = z
  .string()
  .min(1)
  .refine((k) => !k.startsWith("/") && !k.includes("\\") && k.split("/").every((s) => s !== "" && s !== "." && s !== ".."), {
    message: "expected a relative key without empty, '.' or '..' segments",
  });

export const shardEntrySchema = z.object({
  id,
  key: relativeKey,
  bytes: z.number().int().positive().max(SHARD_MAX_BYTES),
  sha256,
  /** Global row number of the shard's first document; shards tile 0..docCount in order. */
  docStart: count,
  docCount: z.number().int().positive(),
  /** Format 2: the segment's deletion bitmap (rows of it that are no longer live); absent when none is deleted. */
  deletes: z
    .object({
      key: relativeKey,
      bytes: z.number().int().positive(),
      sha256,
      /** Rows marked deleted. */
      count: z.number().int().positive(),
    })
    .strict()
    .optional(),
});
export type ShardEntry = z.infer<typeof shardEntrySchema>;

export const indexManifestSchema = z
  .object({
    format: z.literal(INDEX_MANIFEST_FORMAT),
    version: z.union([z.literal(1), z.literal(2)]),
    tenant: id,
    index: id,
    indexVersion: z.number().int().positive(),
    createdAt: z.iso.datetime({ offset: true }),
    model: z.object({
      /** The model directory manifest's modelId: queries must use the same model. */
      id: sha256,
      embeddingDim: z.number().int().positive(),
    }),
    dtype: z.enum(SHARD_DTYPES),
    docCount: count,
    graph: z.object({
      metric: z.literal("l2"),
      degree: count,
      builder: z.string().min(1),
      /** Fraction of documents reachable from the entry points; 1 for a healthy graph. */
      reachableFraction: z.number().min(0).max(1),
      /** Share of the degree given to reverse links (absent in manifests that predate them: 0). */
      reverseShare: z.number().min(0).max(REVERSE_SHARE_MAX).optional(),
    }),
    fields: z.array(z.string().min(1)),
    /**
     * The index's declared filterable fields (shared/filter/schema.ts) its segments' filter columns
     * were written for; absent when none were declared (and in manifests that predate filters).
     */
    filterFields: fieldSchemaSchema.optional(),
    shards: z.array(shardEntrySchema),
    /** The last WAL seq whose batches this version includes (absent, as in v1 manifests that predate it: 0; read it with coveredSeqOf). */
    coveredSeq: count.optional(),
  })
  .superRefine((m, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
    let next = 0;
    m.shards.forEach((s, i) => {
      if (s.docStart !== next) issue(["shards", i, "docStart"], `expected ${next} (shards must be contiguous from 0, in order), got ${s.docStart}`);
      next = s.docStart + s.docCount;
    });
    if (next !== m.docCount) issue(["docCount"], `is ${m.docCount} but the shards hold ${next} documents`);
    const dup = <T>(values: T[]): T | undefined => values.find((v, i) => values.indexOf(v) !== i);
    const dupId = dup(m.shards.map((s) => s.id));
    if (dupId !== undefined) issue(["shards"], `duplicate shard id ${JSON.stringify(dupId)}`);
    const dupKey = dup(m.shards.map((s) => s.key));
    if (dupKey !== undefined) issue(["shards"], `duplicate shard key ${JSON.stringify(dupKey)}`);
    const dupField = dup(m.fields);
    if (dupField !== undefined) issue(["fields"], `duplicate field ${JSON.stringify(dupField)}`);
    if (m.version === 1) {
      m.shards.forEach((s, i) => {
        if (s.deletes) issue(["shards", i, "deletes"], "deletion bitmaps need format version 2");
      });
    }
    m.shards.forEach((s, i) => {
      if (s.deletes && s.deletes.count > s.docCount) issue(["shards", i, "deletes", "count"], `is ${s.deletes.count}, more than the segment's ${s.docCount} rows`);
    });
  });
export type IndexManifest = z.infer<typeof indexManifestSchema>;

/**
 * Validates a manifest (parsed JSON or its text). Throws IndexFormatError listing the first
 * problems with their paths; `label` (e.g. the key) names the manifest in the message.
 */
export function parseIndexManifest(value: unknown, label?: string): IndexManifest {
  const name = label ? `index manifest ${label}` : "index manifest";
  let json = value;
  if (typeof value === "string") {
    try {
      json = JSON.parse(value);
    } catch (e) {
      throw new IndexFormatError(`${name}: not valid JSON: ${(e as Error).message}`);
    }
  }
  const format = (json as { format?: unknown } | null)?.format;
  const version = (json as { version?: unknown } | null)?.version;
  // Say "newer version" plainly instead of a generic literal mismatch.
  if (format === INDEX_MANIFEST_FORMAT && typeof version === "number" && !(INDEX_FORMAT_VERSIONS as readonly number[]).includes(version)) {
    throw new IndexFormatError(`${name}: unsupported index format version ${version}; this reader reads versions ${INDEX_FORMAT_VERSIONS.join(" and ")}`);
  }
  const parsed = indexManifestSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    const more = parsed.error.issues.length > 5 ? ` (and ${parsed.error.issues.length - 5} more)` : "";
    throw new IndexFormatError(`${name}: ${problems.join("; ")}${more}`);
  }
  return parsed.data;
}

/** Validates, then serialises with stable indentation (the bytes that get uploaded). */
export function serializeIndexManifest(manifest: IndexManifest): string {
  return `${JSON.stringify(parseIndexManifest(manifest), null, 2)}\n`;
}

/** The shard holding global row `row` (binary search; shards are contiguous). */
export function shardForRow(manifest: IndexManifest, row: number): { shard: ShardEntry; localRow: number } {
  const { shards } = manifest;
  let lo = 0;
  let hi = shards.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const s = shards[mid];
    if (row < s.docStart) hi = mid - 1;
    else if (row >= s.docStart + s.docCount) lo = mid + 1;
    else return { shard: s, localRow: row - s.docStart };
  }
  throw new RangeError(`row ${row} is outside the index (0..${manifest.docCount - 1})`);
}

/**
 * The store prefix a manifest's shard (and deletes) keys are relative to: the version prefix for
 * format 1, the index prefix for format 2. `at` is where the manifest was read (its version prefix);
 * a v2 manifest read from a bare folder (the CLI) resolves against the folder two levels up.
 */
export function manifestKeyBase(manifest: Pick<IndexManifest, "version">, versionPrefixOfManifest: string): string {
  if (manifest.version === 1) return versionPrefixOfManifest;
  // ".../indexes/<i>/versions/vNNNNNN/" → ".../indexes/<i>/"
  const parts = versionPrefixOfManifest.split("/");
  if (parts.length < 3 || parts.at(-1) !== "" || parts.at(-3) !== "versions") {
    throw new IndexFormatError(`a format 2 manifest must be read from <index>/versions/<vNNNNNN>/, not ${JSON.stringify(versionPrefixOfManifest)}`);
  }
  return parts.slice(0, -3).join("/") + (parts.length > 3 ? "/" : "");
}

/** The manifest's coveredSeq, 0 when it predates living indexes. */
export function coveredSeqOf(manifest: Pick<IndexManifest, "coveredSeq">): number {
  return manifest.coveredSeq ?? 0;
}
