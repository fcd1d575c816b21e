/**
 * Data access for `builds` (edge/migrations/0001_init.sql). At most one non-terminal build per index
 * is enforced by the partial unique index builds_one_active_per_index: insertBuild reports the
 * conflict instead of checking first, so two concurrent requests cannot both start a build.
 */
import type { BuildState, BuildStatus } from "../../../shared/api/worker-api.ts";
import { markSupersededStatement } from "./living.ts";
import { isUniqueViolation, jsonColumn, nowIso } from "./sql.ts";

export type BuildRowState = BuildState | "cancelled";
export const TERMINAL_STATES: readonly BuildRowState[] = ["succeeded", "failed", "cancelled"];
const TERMINAL_SQL = "('succeeded', 'failed', 'cancelled')";

export interface BuildRecord {
  tenantId: string;
  id: string;
  indexId: string;
  version: number;
  uploadId: string | null;
  workerJobId: string | null;
  workerUrl: string | null;
  state: BuildRowState;
  progress: Partial<BuildStatus["progress"]>;
  error: { code: string; message: string } | null;
  createdAt: string;
  updatedAt: string;
}

interface BuildRow {
  tenant_id: string;
  id: string;
  index_id: string;
  version: number;
  upload_id: string | null;
  worker_job_id: string | null;
  worker_url: string | null;
  state: BuildRowState;
  progress: string;
  error: string | null;
  created_at: string;
  updated_at: string;
}

const COLUMNS = "tenant_id, id, index_id, version, upload_id, worker_job_id, worker_url, state, progress, error, created_at, updated_at";

const toRecord = (row: BuildRow): BuildRecord => ({
  tenantId: row.tenant_id,
  id: row.id,
  indexId: row.index_id,
  version: row.version,
  uploadId: row.upload_id,
  workerJobId: row.worker_job_id,
  workerUrl: row.worker_url,
  state: row.state,
  progress: jsonColumn<BuildRecord["progress"]>(row.progress) ?? {},
  error: jsonColumn<BuildRecord["error"]>(row.error),
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

export type InsertBuildResult = { ok: true; build: BuildRecord } | { ok: false; reason: "build_in_progress" | "tenant_build_slots_full" };

/**
 * Inserts a build in state `queued`, if the index has no build in progress (the partial unique
 * index decides) and the tenant holds fewer than `maxTenantBuilds` builds in progress across all
 * its indexes. Both checks are part of the one INSERT … SELECT, which D1 runs as one statement on
 * its single writer, so concurrent requests cannot both take the last slot.
 */
export async function insertBuild(
  db: D1Database,
  build: { tenantId: string; id: string; indexId: string; version: number; uploadId: string },
  maxTenantBuilds: number,
): Promise<InsertBuildResult> {
  const now = nowIso();
  try {
    const row = await db
      .prepare(
        `INSERT INTO builds (tenant_id, id, index_id, version, upload_id, state, created_at, updated_at)
         SELECT ?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?6
         WHERE (SELECT COUNT(*) FROM builds WHERE tenant_id = ?1 AND state NOT IN ${TERMINAL_SQL}) < ?7
         RETURNING ${COLUMNS}`,
      )
      .bind(build.tenantId, build.id, build.indexId, build.version, build.uploadId, now, maxTenantBuilds)
      .first<BuildRow>();
    return row ? { ok: true, build: toRecord(row) } : { ok: false, reason: "tenant_build_slots_full" };
  } catch (error) {
    if (isUniqueViolation(error)) return { ok: false, reason: "build_in_progress" };
    throw error;
  }
}

export async function getBuild(db: D1Database, tenantId: string, indexId: string, id: string): Promise<BuildRecord | null> {
  const row = await db.prepare(`SELECT ${COLUMNS} FROM builds WHERE tenant_id = ?1 AND index_id = ?2 AND id = ?3`).bind(tenantId, indexId, id).first<BuildRow>();
  return row ? toRecord(row) : null;
}

/**
 * Records the worker's latest view of a running build. Guarded by state: a row that already reached
 * a terminal state is never moved back (a slow poll cannot undo a newer one). Null when nothing changed.
 */
export async function updateRunningBuild(
  db: D1Database,
  build: BuildRecord,
  update: { state: BuildRowState; progress?: BuildRecord["progress"]; error?: BuildRecord["error"]; workerJobId?: string; workerUrl?: string },
): Promise<BuildRecord | null> {
  const row = await db
    .prepare(
      `UPDATE builds SET state = ?4, progress = ?5, error = ?6, worker_job_id = COALESCE(?7, worker_job_id), worker_url = COALESCE(?8, worker_url), updated_at = ?9
       WHERE tenant_id = ?1 AND index_id = ?2 AND id = ?3 AND state NOT IN ${TERMINAL_SQL}
       RETURNING ${COLUMNS}`,
    )
    .bind(
      build.tenantId,
      build.indexId,
      build.id,
      update.state,
      JSON.stringify(update.progress ?? build.progress),
      update.error ? JSON.stringify(update.error) : null,
      update.workerJobId ?? null,
      update.workerUrl ?? null,
      nowIso(),
    )
    .first<BuildRow>();
  return row ? toRecord(row) : null;
}

/** A finished version as its manifest describes it (builds/version-manifest.ts reads it). */
export interface BuiltVersion {
  /** Live documents: the segments' rows less those their deletion bitmaps mark. */
  docCount: number;
  manifestKey: string;
  /** Manifest shard entries as search reads them (db/indexes.ts getActiveVersion). */
  shards: Array<{ id: string; bytes: number; docCount: number }>;
  /** The last WAL seq the version includes (manifest coveredSeq); absent: 0. */
  coveredSeq?: number;
}

/**
 * The success transition, as ONE D1 batch (a transaction): the build row moves to succeeded only if
 * it was still running; the version becomes ready (with the manifest's coveredSeq) only if that build
 * did; the index's active version flips only to a ready version newer than the current one; the
 * version it replaced (and any other ready version that is not active) gets superseded_at, from
 * which the sweeper's grace period runs. Every statement is guarded by state, so concurrent polls, a
 * retry after a crash, or an older build finishing late cannot flip it wrongly. The IndexWriter's
 * pending counters are not touched here: its next maintenance run sees the active version's
 * covered_seq change and recounts them (living/maintenance.ts). Returns whether this call made the transition.
 */
export async function completeBuild(db: D1Database, build: BuildRecord, built: BuiltVersion, progress: BuildRecord["progress"]): Promise<boolean> {
  const now = nowIso();
  const results = await db.batch([
    db
      .prepare(`UPDATE builds SET state = 'succeeded', progress = ?4, error = NULL, updated_at = ?5 WHERE tenant_id = ?1 AND index_id = ?2 AND id = ?3 AND state NOT IN ${TERMINAL_SQL}`)
      .bind(build.tenantId, build.indexId, build.id, JSON.stringify(progress), now),
    db
      .prepare(
        `UPDATE index_versions SET state = 'ready', doc_count = ?4, manifest_key = ?5, shards = ?6, covered_seq = ?8
         WHERE tenant_id = ?1 AND index_id = ?2 AND version = ?3 AND state = 'building'
           AND EXISTS (SELECT 1 FROM builds b WHERE b.tenant_id = ?1 AND b.index_id = ?2 AND b.id = ?7 AND b.version = ?3 AND b.state = 'succeeded')`,
      )
      .bind(build.tenantId, build.indexId, build.version, built.docCount, built.manifestKey, JSON.stringify(built.shards), build.id, built.coveredSeq ?? 0),
    db
      .prepare(
        `UPDATE indexes SET active_version = ?3, doc_count = ?4, status = 'ready'
         WHERE tenant_id = ?1 AND id = ?2 AND status != 'deleted' AND (active_version IS NULL OR active_version < ?3)
           AND EXISTS (SELECT 1 FROM index_versions v WHERE v.tenant_id = ?1 AND v.index_id = ?2 AND v.version = ?3 AND v.state = 'ready')`,
      )
      .bind(build.tenantId, build.indexId, build.version, built.docCount),
    markSupersededStatement(db, build.tenantId, build.indexId, now),
  ]);
  return (results[0]?.meta.changes ?? 0) > 0;
}

/**
 * The failure (or cancel) transition: the build ends in `state` and its version fails with it, in
 * one batch; the index keeps its active version. Guarded by state, so only the first ending counts.
 * Returns whether this call ended the build.
 */
export async function endBuild(
  db: D1Database,
  build: BuildRecord,
  state: "failed" | "cancelled",
  error: { code: string; message: string },
  progress?: BuildRecord["progress"],
): Promise<boolean> {
  const results = await db.batch([
    db
      .prepare(`UPDATE builds SET state = ?4, error = ?5, progress = ?6, updated_at = ?7 WHERE tenant_id = ?1 AND index_id = ?2 AND id = ?3 AND state NOT IN ${TERMINAL_SQL}`)
      .bind(build.tenantId, build.indexId, build.id, state, JSON.stringify(error), JSON.stringify(progress ?? build.progress), nowIso()),
    db
      .prepare("UPDATE index_versions SET state = 'failed' WHERE tenant_id = ?1 AND index_id = ?2 AND version = ?3 AND state = 'building'")
      .bind(build.tenantId, build.indexId, build.version),
  ]);
  return (results[0]?.meta.changes ?? 0) > 0;
}

export function failBuild(db: D1Database, build: BuildRecord, error: { code: string; message: string }, progress?: BuildRecord["progress"]): Promise<boolean> {
  return endBuild(db, build, "failed", error, progress);
}

/**
 * Fails the tenant's builds whose dispatch was never recorded: still `queued` with no worker job,
 * and not touched since `staleBefore` (an ISO time). A dispatch either records its worker job or
 * fails its row within a bounded time (builds/routes.ts); a row left behind means the recording
 * itself failed (D1 error, the isolate died), and without this the index could never build again.
 */
export async function failStaleDispatches(db: D1Database, tenantId: string, staleBefore: string, error: { code: string; message: string }): Promise<number> {
  const stale = "tenant_id = ?1 AND state = 'queued' AND worker_job_id IS NULL AND updated_at < ?2";
  const results = await db.batch([
    db
      .prepare(`UPDATE index_versions SET state = 'failed' WHERE state = 'building' AND (tenant_id, index_id, version) IN (SELECT tenant_id, index_id, version FROM builds WHERE ${stale})`)
      .bind(tenantId, staleBefore),
    db.prepare(`UPDATE builds SET state = 'failed', error = ?3, updated_at = ?4 WHERE ${stale}`).bind(tenantId, staleBefore, JSON.stringify(error), nowIso()),
  ]);
  return results[1]?.meta.changes ?? 0;
}

/** The index's build in progress (at most one: builds_one_active_per_index), with its worker job. */
export async function getBuildInProgress(db: D1Database, tenantId: string, indexId: string): Promise<BuildRecord | null> {
  const row = await db
    .prepare(`SELECT ${COLUMNS} FROM builds WHERE tenant_id = ?1 AND index_id = ?2 AND state NOT IN ${TERMINAL_SQL}`)
    .bind(tenantId, indexId)
    .first<BuildRow>();
  return row ? toRecord(row) : null;
}
