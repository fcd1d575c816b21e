/** Data access for `indexes` and `index_versions`. Every query is scoped by tenant id. */
import type { FieldSchema } from "../../../shared/filter/schema.ts";
import { isUniqueViolation, jsonColumn, nowIso } from "./sql.ts";

export type IndexStatus = "empty" | "ready" | "deleted";
export type VersionState = "building" | "ready" | "failed";

export interface IndexRecord {
  tenantId: string;
  id: string;
  createdAt: string;
  activeVersion: number | null;
  docCount: number;
  status: IndexStatus;
  deletedAt: string | null;
  /** Highest acknowledged write seq (0: never written). */
  headSeq: number;
  /** The declared filterable fields (POST /v1/indexes `fields`); empty when none were declared. */
  fields: FieldSchema;
}

export interface IndexVersionRecord {
  version: number;
  state: VersionState;
  docCount: number;
  manifestKey: string | null;
  shards: unknown[];
  createdAt: string;
  /** The WAL seq the version contains. */
  coveredSeq: number;
  kind: "build" | "compaction";
}

interface IndexRow {
  tenant_id: string;
  id: string;
  created_at: string;
  active_version: number | null;
  doc_count: number;
  status: IndexStatus;
  deleted_at: string | null;
  head_seq: number;
  filter_fields: string | null;
}

interface VersionRow {
  version: number;
  state: VersionState;
  doc_count: number;
  manifest_key: string | null;
  shards: string;
  created_at: string;
  covered_seq: number;
  kind: "build" | "compaction";
}

const INDEX_COLUMNS = "tenant_id, id, created_at, active_version, doc_count, status, deleted_at, head_seq, filter_fields";
const VERSION_COLUMNS = "version, state, doc_count, manifest_key, shards, created_at, covered_seq, kind";

const toIndex = (row: IndexRow): IndexRecord => ({
  tenantId: row.tenant_id,
  id: row.id,
  createdAt: row.created_at,
  activeVersion: row.active_version,
  docCount: row.doc_count,
  status: row.status,
  deletedAt: row.deleted_at,
  headSeq: row.head_seq,
  fields: jsonColumn<FieldSchema>(row.filter_fields) ?? {},
});

const toVersion = (row: VersionRow): IndexVersionRecord => ({
  version: row.version,
  state: row.state,
  docCount: row.doc_count,
  manifestKey: row.manifest_key,
  shards: jsonColumn<unknown[]>(row.shards) ?? [],
  createdAt: row.created_at,
  coveredSeq: row.covered_seq,
  kind: row.kind,
});

export type CreateIndexResult = { ok: true; index: IndexRecord } | { ok: false; reason: "exists" | "deleted" };

/** "deleted": the id belonged to a soft-deleted index whose row (and maybe data) still exists. */
export async function createIndex(db: D1Database, tenantId: string, id: string, fields: FieldSchema = {}): Promise<CreateIndexResult> {
  try {
    // The schema is written once, here: nothing updates filter_fields later (segments are built from it).
    const row = await db
      .prepare(`INSERT INTO indexes (tenant_id, id, created_at, filter_fields) VALUES (?1, ?2, ?3, ?4) RETURNING ${INDEX_COLUMNS}`)
      .bind(tenantId, id, nowIso(), Object.keys(fields).length > 0 ? JSON.stringify(fields) : null)
      .first<IndexRow>();
    return { ok: true, index: toIndex(row!) };
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    const existing = await getIndexIncludingDeleted(db, tenantId, id);
    return { ok: false, reason: existing?.status === "deleted" ? "deleted" : "exists" };
  }
}

async function getIndexIncludingDeleted(db: D1Database, tenantId: string, id: string): Promise<IndexRecord | null> {
  const row = await db.prepare(`SELECT ${INDEX_COLUMNS} FROM indexes WHERE tenant_id = ?1 AND id = ?2`).bind(tenantId, id).first<IndexRow>();
  return row ? toIndex(row) : null;
}

/** A live index of this tenant; null when missing, deleted, or another tenant's. */
export async function getIndex(db: D1Database, tenantId: string, id: string): Promise<IndexRecord | null> {
  const index = await getIndexIncludingDeleted(db, tenantId, id);
  return index && index.status !== "deleted" ? index : null;
}

export async function listIndexes(db: D1Database, tenantId: string): Promise<IndexRecord[]> {
  const { results } = await db
    .prepare(`SELECT ${INDEX_COLUMNS} FROM indexes WHERE tenant_id = ?1 AND status != 'deleted' ORDER BY id`)
    .bind(tenantId)
    .all<IndexRow>();
  return results.map(toIndex);
}

export async function listIndexVersions(db: D1Database, tenantId: string, indexId: string): Promise<IndexVersionRecord[]> {
  const { results } = await db
    .prepare(`SELECT ${VERSION_COLUMNS} FROM index_versions WHERE tenant_id = ?1 AND index_id = ?2 ORDER BY version`)
    .bind(tenantId, indexId)
    .all<VersionRow>();
  return results.map(toVersion);
}

/** Soft delete; null when there was no live index to delete. */
export async function softDeleteIndex(db: D1Database, tenantId: string, id: string): Promise<IndexRecord | null> {
  const row = await db
    .prepare(`UPDATE indexes SET status = 'deleted', deleted_at = ?3 WHERE tenant_id = ?1 AND id = ?2 AND status != 'deleted' RETURNING ${INDEX_COLUMNS}`)
    .bind(tenantId, id, nowIso())
    .first<IndexRow>();
  return row ? toIndex(row) : null;
}

/**
 * Reserves the next version number of a live index (state 'building'), for a build to fill.
 * One statement, so two concurrent reservations cannot get the same number (the PK also forbids it).
 * Null when the index is missing or deleted.
 */
export async function reserveIndexVersion(db: D1Database, tenantId: string, indexId: string): Promise<number | null> {
  const row = await db
    .prepare(
      `INSERT INTO index_versions (tenant_id, index_id, version, state, created_at)
       SELECT i.tenant_id, i.id, COALESCE((SELECT MAX(v.version) FROM index_versions v WHERE v.tenant_id = i.tenant_id AND v.index_id = i.id), 0) + 1, 'building', ?3
       FROM indexes i WHERE i.tenant_id = ?1 AND i.id = ?2 AND i.status != 'deleted'
       RETURNING version`,
    )
    .bind(tenantId, indexId, nowIso())
    .first<{ version: number }>();
  return row?.version ?? null;
}

export interface ActiveVersion {
  /** 0: never built (no segments; every document is in the tail). */
  version: number;
  /** The version's segment (shard) ids; empty for version 0. */
  shards: string[];
  /** The WAL seq the version contains (index_versions.covered_seq): its tail starts after it. */
  coveredSeq: number;
  /** The index's highest acknowledged write seq (indexes.head_seq). */
  headSeq: number;
  /** The index's declared filterable fields (indexes.filter_fields); absent or empty when none. */
  fields?: FieldSchema;
}

export type ActiveVersionLookup = { ok: true; active: ActiveVersion } | { ok: false; reason: "not_found" | "not_ready" };

/** index_versions.shards holds the manifest's shard entries ({id, …}) as db/builds.ts completeBuild records them; plain ids also work. */
function shardIds(shards: unknown): string[] {
  if (!Array.isArray(shards)) return [];
  return shards.flatMap((s) => (typeof s === "string" ? [s] : s && typeof (s as { id?: unknown }).id === "string" ? [(s as { id: string }).id] : []));
}

/**
 * The live index's active version, its shard ids, its covered seq and the index's head seq, in one
 * read (indexes joined with its active, ready index_versions row). An index never built but written
 * to is version 0 (the tail only). "not_ready": the index has neither a ready version nor any
 * acknowledged write.
 */
export async function getActiveVersion(db: D1Database, tenantId: string, indexId: string): Promise<ActiveVersionLookup> {
  const row = await db
    .prepare(
      `SELECT v.version AS version, v.shards AS shards, v.covered_seq AS covered_seq, i.head_seq AS head_seq, i.filter_fields AS filter_fields
       FROM indexes i LEFT JOIN index_versions v
         ON v.tenant_id = i.tenant_id AND v.index_id = i.id AND v.version = i.active_version AND v.state = 'ready'
       WHERE i.tenant_id = ?1 AND i.id = ?2 AND i.status != 'deleted'`,
    )
    .bind(tenantId, indexId)
    .first<{ version: number | null; shards: string | null; covered_seq: number | null; head_seq: number; filter_fields: string | null }>();
  if (!row) return { ok: false, reason: "not_found" };
  const shards = shardIds(jsonColumn<unknown>(row.shards));
  const headSeq = row.head_seq;
  // Present only when declared, so an index without filter fields reads as before.
  const declared = jsonColumn<FieldSchema>(row.filter_fields);
  const fields = declared && Object.keys(declared).length > 0 ? { fields: declared } : {};
  // A ready version answers even with no segments left (a compaction of deletes only): an empty answer.
  if (row.version !== null) return { ok: true, active: { version: row.version, shards, coveredSeq: row.covered_seq ?? 0, headSeq, ...fields } };
  if (row.version === null && headSeq > 0) return { ok: true, active: { version: 0, shards: [], coveredSeq: 0, headSeq, ...fields } };
  return { ok: false, reason: "not_ready" };
}

/** indexes.head_seq of a live index; null when missing or deleted. */
export async function getHeadSeq(db: D1Database, tenantId: string, indexId: string): Promise<number | null> {
  const row = await db
    .prepare("SELECT head_seq FROM indexes WHERE tenant_id = ?1 AND id = ?2 AND status != 'deleted'")
    .bind(tenantId, indexId)
    .first<{ head_seq: number }>();
  return row?.head_seq ?? null;
}

/**
 * Commits an acknowledged write: head_seq becomes `seq` unless it is already higher (it only ever
 * rises). False when the index is missing or deleted (the write must not be acknowledged).
 */
export async function commitHeadSeq(db: D1Database, tenantId: string, indexId: string, seq: number): Promise<boolean> {
  const row = await db
    .prepare("UPDATE indexes SET head_seq = MAX(head_seq, ?3) WHERE tenant_id = ?1 AND id = ?2 AND status != 'deleted' RETURNING head_seq")
    .bind(tenantId, indexId, seq)
    .first<{ head_seq: number }>();
  return row !== null;
}

export async function failIndexVersion(db: D1Database, tenantId: string, indexId: string, version: number): Promise<void> {
  await db
    .prepare("UPDATE index_versions SET state = 'failed' WHERE tenant_id = ?1 AND index_id = ?2 AND version = ?3 AND state = 'building'")
    .bind(tenantId, indexId, version)
    .run();
}

export interface ActiveBuildRef {
  id: string;
  state: string;
  version: number;
}

/** The index's build in progress, if any (at most one: see builds_one_active_per_index). */
export async function getActiveBuild(db: D1Database, tenantId: string, indexId: string): Promise<ActiveBuildRef | null> {
  return db
    .prepare("SELECT id, state, version FROM builds WHERE tenant_id = ?1 AND index_id = ?2 AND state NOT IN ('succeeded', 'failed', 'cancelled')")
    .bind(tenantId, indexId)
    .first<ActiveBuildRef>();
}
