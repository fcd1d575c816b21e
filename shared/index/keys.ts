/**
 * Object keys of the index store (an S3 prefix or a local folder; the same keys in both):
 *
 *   tenants/<tenant>/indexes/<index>/versions/v000001/manifest.json
 *   tenants/<tenant>/indexes/<index>/versions/v000001/shards/<attempt>/<shard-id>.hxs
 *   tenants/<tenant>/uploads/<upload-id>/…
 *
 * Ids are validated here, once, so no caller can build a key that escapes its tenant.
 * Versions are zero-padded to six digits so a plain listing sorts them (beyond v999999 they
 * simply get longer; parseVersion reads any length).
 */
import { IndexFormatError } from "./errors.ts";
import { SHARD_FILE_EXTENSION } from "./format.ts";

export const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const MANIFEST_FILE = "manifest.json";
const VERSION_PATTERN = /^v(\d{6,})$/;

/** Throws unless `id` is a valid tenant, index, shard or upload id; `what` names it in the error. */
export function validateId(id: string, what: string): string {
  if (typeof id !== "string" || !ID_PATTERN.test(id)) {
    throw new IndexFormatError(`invalid ${what} id ${JSON.stringify(id)}: expected 1-63 of [a-z0-9_-], starting with a letter or digit`);
  }
  return id;
}

/** 1 → "v000001". */
export function formatVersion(version: number): string {
  if (!Number.isSafeInteger(version) || version < 1) throw new IndexFormatError(`invalid index version ${version}: expected a positive integer`);
  return `v${String(version).padStart(6, "0")}`;
}

/** "v000001" → 1; undefined for anything that formatVersion would not have produced. */
export function parseVersion(segment: string): number | undefined {
  const m = VERSION_PATTERN.exec(segment);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n >= 1 && formatVersion(n) === segment ? n : undefined;
}

export function tenantPrefix(tenant: string): string {
  return `tenants/${validateId(tenant, "tenant")}/`;
}

/** Where all versions of an index live; list it to find them. */
export function indexVersionsPrefix(tenant: string, index: string): string {
  return `${tenantPrefix(tenant)}indexes/${validateId(index, "index")}/versions/`;
}

/** Ends with "/"; shard keys in a manifest are relative to it. */
export function versionPrefix(tenant: string, index: string, version: number): string {
  return `${indexVersionsPrefix(tenant, index)}${formatVersion(version)}/`;
}

/** Written last: the version exists only once this key exists. */
export function manifestKey(tenant: string, index: string, version: number): string {
  return `${versionPrefix(tenant, index, version)}${MANIFEST_FILE}`;
}

/** The folder, under a version prefix, that holds its shard objects. */
export const SHARDS_FOLDER = "shards/";

/**
 * A shard's key relative to its version prefix (what the manifest stores). Builds pass their
 * attempt id, so two builders of one version never write the same key.
 */
export function shardRelativeKey(shardId: string, attemptId?: string): string {
  const folder = attemptId === undefined ? SHARDS_FOLDER : `${SHARDS_FOLDER}${validateId(attemptId, "build attempt")}/`;
  return `${folder}${validateId(shardId, "shard")}${SHARD_FILE_EXTENSION}`;
}

export function shardKey(tenant: string, index: string, version: number, shardId: string): string {
  return `${versionPrefix(tenant, index, version)}${shardRelativeKey(shardId)}`;
}

/** Staging area for one upload, e.g. documents sent before an index build. */
export function uploadPrefix(tenant: string, uploadId: string): string {
  return `${tenantPrefix(tenant)}uploads/${validateId(uploadId, "upload")}/`;
}

/**
 * The versions whose manifests appear in a listing of indexVersionsPrefix(tenant, index),
 * ascending. Versions without a manifest (an interrupted build) are not versions.
 */
export function versionsFromListing(keys: Iterable<string>, tenant: string, index: string): number[] {
  const prefix = indexVersionsPrefix(tenant, index);
  const found = new Set<number>();
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const [segment, file, ...rest] = key.slice(prefix.length).split("/");
    const v = parseVersion(segment);
    if (v !== undefined && file === MANIFEST_FILE && rest.length === 0) found.add(v);
  }
  return [...found].sort((a, b) => a - b);
}

// ─── Living indexes (format version 2): everything of an index under one prefix ────────────────────
//
//   tenants/<t>/indexes/<i>/wal/<seq, 12 digits>.hwal                 one acknowledged write batch
//   tenants/<t>/indexes/<i>/versions/vNNNNNN/manifest.json             v1 (build) or v2 (compaction)
//   tenants/<t>/indexes/<i>/versions/vNNNNNN/shards/<attempt>/<id>.hxs a segment written by that version
//   tenants/<t>/indexes/<i>/versions/vNNNNNN/deletes/<segment>.hxd     a deletion bitmap of that version
//
// A v2 manifest's keys are relative to indexPrefix, so a compaction's version can keep the
// segments that earlier versions wrote without copying them.

export const WAL_FOLDER = "wal/";
export const WAL_FILE_EXTENSION = ".hwal";
export const DELETES_FILE_EXTENSION = ".hxd";
const WAL_SEQ_DIGITS = 12;
const WAL_NAME_PATTERN = /^(\d{12,})\.hwal$/;

/** Everything an index stores lives under this prefix (ends with "/"). */
export function indexPrefix(tenant: string, index: string): string {
  return `${tenantPrefix(tenant)}indexes/${validateId(index, "index")}/`;
}

/** Where an index's write-ahead log lives; list it to find the batches. */
export function walPrefix(tenant: string, index: string): string {
  return `${indexPrefix(tenant, index)}${WAL_FOLDER}`;
}

/** 7 → "000000000007.hwal": zero-padded so a plain listing sorts by seq. */
export function walFileName(seq: number): string {
  if (!Number.isSafeInteger(seq) || seq < 1) throw new IndexFormatError(`invalid write seq ${seq}: expected a positive integer`);
  return `${String(seq).padStart(WAL_SEQ_DIGITS, "0")}${WAL_FILE_EXTENSION}`;
}

/** The WAL object of batch `seq`, written create-if-absent and never changed. */
export function walKey(tenant: string, index: string, seq: number): string {
  return `${walPrefix(tenant, index)}${walFileName(seq)}`;
}

/** "000000000007.hwal" → 7; undefined for anything walFileName would not have produced. */
export function parseWalFileName(name: string): number | undefined {
  const m = WAL_NAME_PATTERN.exec(name);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n >= 1 && walFileName(n) === name ? n : undefined;
}

/** A version's folder relative to indexPrefix: "versions/v000003/". */
export function versionFolder(version: number): string {
  return `versions/${formatVersion(version)}/`;
}

/** A deletion bitmap written by `version` for `segmentId`, relative to indexPrefix. */
export function deletesRelativeKey(version: number, segmentId: string): string {
  return `${versionFolder(version)}deletes/${validateId(segmentId, "segment")}${DELETES_FILE_EXTENSION}`;
}
