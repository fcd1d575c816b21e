/**
 * SQL of a living index's background maintenance (living/maintenance.ts): version reservations that
 * record the WAL seq they cover, the compaction flip, and what the sweeper may delete. Columns of
 * edge/migrations/0002_living_indexes.sql. Every query is scoped by tenant id.
 */
import type { BuiltVersion } from "./builds.ts";
import type { FieldSchema } from "../../../shared/filter/schema.ts";
import { jsonColumn, nowIso } from "./sql.ts";

export type VersionKind = "build" | "compaction";

export interface ReservedVersion {
  version: number;
  /** indexes.head_seq when the version was reserved: the version will include every seq up to it. */
  coveredSeq: number;
}

/**
 * Reserves the next version number of a live index (state 'building'), recording the index's head
 * seq as its covered_seq, in one statement: the head read and the reservation cannot be split by a
 * write committing between them. Null when the index is missing or deleted.
 */
export async function reserveVersion(db: D1Database, tenantId: string, indexId: string, kind: VersionKind): Promise<ReservedVersion | null> {
  const row = await db
    .prepare(
      `INSERT INTO index_versions (tenant_id, index_id, version, state, kind, covered_seq, created_at)
       SELECT i.tenant_id, i.id, COALESCE((SELECT MAX(v.version) FROM index_versions v WHERE v.tenant_id = i.tenant_id AND v.index_id = i.id), 0) + 1,
              'building', ?3, i.head_seq, ?4
       FROM indexes i WHERE i.tenant_id = ?1 AND i.id = ?2 AND i.status != 'deleted'
       RETURNING version, covered_seq`,
    )
    .bind(tenantId, indexId, kind, nowIso())
    .first<{ version: number; covered_seq: number }>();
  return row ? { version: row.version, coveredSeq: row.covered_seq } : null;
}

/**
 * Every ready version that is not (or no longer) the active one gets superseded_at = now, once.
 * Part of every flip's batch (after the flip), so the sweeper's grace runs from the moment a version
 * stopped serving new searches.
 */
export function markSupersededStatement(db: D1Database, tenantId: string, indexId: string, now: string): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE index_versions SET superseded_at = ?3
       WHERE tenant_id = ?1 AND index_id = ?2 AND state = 'ready' AND superseded_at IS NULL
         AND version IS NOT (SELECT active_version FROM indexes WHERE tenant_id = ?1 AND id = ?2)`,
    )
    .bind(tenantId, indexId, now);
}

export interface MaintenanceIndex {
  status: "empty" | "ready" | "deleted";
  activeVersion: number | null;
  headSeq: number;
  purgedAt: string | null;
  /** The declared filterable fields (indexes.filter_fields); empty when none. */
  fields: FieldSchema;
}

export interface MaintenanceVersion {
  version: number;
  state: "building" | "ready" | "failed";
  kind: VersionKind;
  coveredSeq: number;
  supersededAt: string | null;
  sweptAt: string | null;
}

export interface MaintenanceView {
  /** Null when the tenant has no such index (deleted ones are included). */
  index: MaintenanceIndex | null;
  versions: MaintenanceVersion[];
  /** The index's build in progress (at most one), if any. */
  buildInProgress: { id: string; version: number; uploadId: string | null } | null;
}

/** The index, its versions and its build in progress, read in one batch (one consistent snapshot). */
export async function loadMaintenanceView(db: D1Database, tenantId: string, indexId: string): Promise<MaintenanceView> {
  const [indexes, versions, builds] = await db.batch([
    db.prepare("SELECT status, active_version, head_seq, purged_at, filter_fields FROM indexes WHERE tenant_id = ?1 AND id = ?2").bind(tenantId, indexId),
    db
      .prepare("SELECT version, state, kind, covered_seq, superseded_at, swept_at FROM index_versions WHERE tenant_id = ?1 AND index_id = ?2 ORDER BY version")
      .bind(tenantId, indexId),
    db
      .prepare("SELECT id, version, upload_id FROM builds WHERE tenant_id = ?1 AND index_id = ?2 AND state NOT IN ('succeeded', 'failed', 'cancelled')")
      .bind(tenantId, indexId),
  ]);
  const i = indexes?.results[0] as { status: MaintenanceIndex["status"]; active_version: number | null; head_seq: number; purged_at: string | null; filter_fields: string | null } | undefined;
  const b = builds?.results[0] as { id: string; version: number; upload_id: string | null } | undefined;
  return {
    index: i ? { status: i.status, activeVersion: i.active_version, headSeq: i.head_seq, purgedAt: i.purged_at, fields: jsonColumn<FieldSchema>(i.filter_fields) ?? {} } : null,
    versions: ((versions?.results ?? []) as Array<{ version: number; state: MaintenanceVersion["state"]; kind: VersionKind; covered_seq: number; superseded_at: string | null; swept_at: string | null }>).map(
      (v) => ({ version: v.version, state: v.state, kind: v.kind, coveredSeq: v.covered_seq, supersededAt: v.superseded_at, sweptAt: v.swept_at }),
    ),
    buildInProgress: b ? { id: b.id, version: b.version, uploadId: b.upload_id } : null,
  };
}

export type CompactionOutcome = "flipped" | "discarded";

/** `active_version` names version `base` (?3; 0 = never built, i.e. NULL). */
const ACTIVE_IS_BASE = "(active_version = ?3 OR (?3 = 0 AND active_version IS NULL))";

/**
 * The end of a successful compaction, as ONE D1 batch: version `version` becomes ready (shards,
 * covered_seq, doc_count from its manifest) and active ONLY if `base` is still the active version
 * of the live index; otherwise (a build flipped meanwhile, or the index was deleted) it is marked
 * failed, i.e. discarded, and the sweeper collects it. The replaced version gets superseded_at.
 */
export async function completeCompaction(
  db: D1Database,
  tenantId: string,
  indexId: string,
  job: { version: number; baseVersion: number },
  built: BuiltVersion,
): Promise<CompactionOutcome> {
  const now = nowIso();
  const results = await db.batch([
    db
      .prepare(
        `UPDATE index_versions SET state = 'ready', doc_count = ?5, manifest_key = ?6, shards = ?7, covered_seq = ?8
         WHERE tenant_id = ?1 AND index_id = ?2 AND version = ?4 AND state = 'building' AND kind = 'compaction'
           AND EXISTS (SELECT 1 FROM indexes WHERE tenant_id = ?1 AND id = ?2 AND status != 'deleted' AND ${ACTIVE_IS_BASE})`,
      )
      .bind(tenantId, indexId, job.baseVersion, job.version, built.docCount, built.manifestKey, JSON.stringify(built.shards), built.coveredSeq ?? 0),
    db
      .prepare(
        `UPDATE indexes SET active_version = ?4, doc_count = ?5, status = 'ready'
         WHERE tenant_id = ?1 AND id = ?2 AND status != 'deleted' AND ${ACTIVE_IS_BASE}
           AND EXISTS (SELECT 1 FROM index_versions v WHERE v.tenant_id = ?1 AND v.index_id = ?2 AND v.version = ?4 AND v.state = 'ready')`,
      )
      .bind(tenantId, indexId, job.baseVersion, job.version, built.docCount),
    db.prepare("UPDATE index_versions SET state = 'failed' WHERE tenant_id = ?1 AND index_id = ?2 AND version = ?3 AND state = 'building'").bind(tenantId, indexId, job.version),
    markSupersededStatement(db, tenantId, indexId, now),
  ]);
  return (results[1]?.meta.changes ?? 0) > 0 ? "flipped" : "discarded";
}

/** A compaction that failed, was lost or was given up: its version will never be ready. */
export async function failCompactionVersion(db: D1Database, tenantId: string, indexId: string, version: number): Promise<void> {
  await db
    .prepare("UPDATE index_versions SET state = 'failed' WHERE tenant_id = ?1 AND index_id = ?2 AND version = ?3 AND state = 'building' AND kind = 'compaction'")
    .bind(tenantId, indexId, version)
    .run();
}

export interface SweepableUpload {
  id: string;
  expiresAt: string;
  /** A build in progress reads it: not to be deleted yet. */
  inUse: boolean;
}

/**
 * The index's uploads that expired in (after, until] (ISO times), oldest first, with whether a
 * build in progress uses them. `limit` bounds one sweep's list.
 */
export async function expiredUploads(db: D1Database, tenantId: string, indexId: string, after: string, until: string, limit: number): Promise<SweepableUpload[]> {
  const { results } = await db
    .prepare(
      `SELECT u.id AS id, u.expires_at AS expires_at,
              EXISTS (SELECT 1 FROM builds b WHERE b.tenant_id = ?1 AND b.upload_id = u.id AND b.state NOT IN ('succeeded', 'failed', 'cancelled')) AS in_use
       FROM uploads u WHERE u.tenant_id = ?1 AND u.index_id = ?2 AND u.expires_at > ?3 AND u.expires_at <= ?4
       ORDER BY u.expires_at, u.id LIMIT ?5`,
    )
    .bind(tenantId, indexId, after, until, limit)
    .all<{ id: string; expires_at: string; in_use: number }>();
  return results.map((r) => ({ id: r.id, expiresAt: r.expires_at, inUse: r.in_use === 1 }));
}

/** Every upload id of the index (a deleted index takes them all with it). */
export async function uploadIdsOfIndex(db: D1Database, tenantId: string, indexId: string): Promise<string[]> {
  const { results } = await db.prepare("SELECT id FROM uploads WHERE tenant_id = ?1 AND index_id = ?2 ORDER BY id").bind(tenantId, indexId).all<{ id: string }>();
  return results.map((r) => r.id);
}

/** The sweeper deleted these versions' objects (every one that no kept manifest references). */
export async function markVersionsSwept(db: D1Database, tenantId: string, indexId: string, versions: number[]): Promise<void> {
  if (versions.length === 0) return;
  await db
    .prepare("UPDATE index_versions SET swept_at = ?4 WHERE tenant_id = ?1 AND index_id = ?2 AND swept_at IS NULL AND version IN (SELECT value FROM json_each(?3))")
    .bind(tenantId, indexId, JSON.stringify(versions), nowIso())
    .run();
}

/** Every object of the deleted index is gone: purged_at, and every version swept. False unless the index is soft-deleted. */
export async function markIndexPurged(db: D1Database, tenantId: string, indexId: string): Promise<boolean> {
  const now = nowIso();
  const [purged] = await db.batch([
    db.prepare("UPDATE indexes SET purged_at = COALESCE(purged_at, ?3) WHERE tenant_id = ?1 AND id = ?2 AND status = 'deleted'").bind(tenantId, indexId, now),
    db
      .prepare("UPDATE index_versions SET swept_at = ?3 WHERE tenant_id = ?1 AND index_id = ?2 AND swept_at IS NULL AND EXISTS (SELECT 1 FROM indexes WHERE tenant_id = ?1 AND id = ?2 AND status = 'deleted')")
      .bind(tenantId, indexId, now),
  ]);
  return (purged?.meta.changes ?? 0) > 0;
}
