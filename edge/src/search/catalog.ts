/**
 * Which version of an index a search reads, and its shards: one D1 read (indexes joined with its
 * active index_versions row), done before the cache lookup so the cache key holds the version.
 */
export interface ActiveVersion {
  version: number;
  shards: string[];
}

export type ActiveVersionLookup =
  | { ok: true; active: ActiveVersion }
  | { ok: false; reason: "not_found" | "not_ready" };

export type SearchCatalog = (db: D1Database, tenantId: string, indexId: string) => Promise<ActiveVersionLookup>;

/** index_versions.shards holds the manifest's shard entries ({id, …}) as the builds route records them; plain ids also work. */
export function shardIds(shards: unknown): string[] {
  if (!Array.isArray(shards)) return [];
  return shards.flatMap((s) => (typeof s === "string" ? [s] : s && typeof (s as { id?: unknown }).id === "string" ? [(s as { id: string }).id] : []));
}

export const d1SearchCatalog: SearchCatalog = async (db, tenantId, indexId) => {
  const row = await db
    .prepare(
      `SELECT i.active_version AS version, v.shards AS shards
       FROM indexes i LEFT JOIN index_versions v
         ON v.tenant_id = i.tenant_id AND v.index_id = i.id AND v.version = i.active_version AND v.state = 'ready'
       WHERE i.tenant_id = ?1 AND i.id = ?2 AND i.status != 'deleted'`,
    )
    .bind(tenantId, indexId)
    .first<{ version: number | null; shards: string | null }>();
  if (!row) return { ok: false, reason: "not_found" };
  const shards = row.shards === null ? [] : shardIds(JSON.parse(row.shards));
  if (row.version === null || shards.length === 0) return { ok: false, reason: "not_ready" };
  return { ok: true, active: { version: row.version, shards } };
};
