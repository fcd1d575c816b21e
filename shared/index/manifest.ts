/**
 * `manifest.json` of one index version (index format version 1): the model the embeddings
 * came from, the graph, the stored fields and the list of shards with their sizes and
 * sha256s. Written LAST, after every shard: a version exists only once its manifest does,
 * so readers never see a half-written index. Documented in shared/FORMATS.md.
 */
import * as z from "zod";
import { IndexFormatError } from "./errors.ts";
import { SHARD_DTYPES, SHARD_MAX_BYTES } from "./format.ts";
import { ID_PATTERN } from "./keys.ts";

export const INDEX_MANIFEST_FORMAT = "hypencoder.index";
export const INDEX_FORMAT_VERSION = 1;
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
});
export type ShardEntry = z.infer<typeof shardEntrySchema>;

export const indexManifestSchema = z
  .object({
    format: z.literal(INDEX_MANIFEST_FORMAT),
    version: z.literal(INDEX_FORMAT_VERSION),
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
    shards: z.array(shardEntrySchema),
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
  if (format === INDEX_MANIFEST_FORMAT && typeof version === "number" && version !== INDEX_FORMAT_VERSION) {
    throw new IndexFormatError(`${name}: unsupported index format version ${version}; this reader reads version ${INDEX_FORMAT_VERSION}`);
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
