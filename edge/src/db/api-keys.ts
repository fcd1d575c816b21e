/** Data access for `api_keys`. Only hashes are stored; the key itself never reaches this module. */
import { nowIso } from "./sql.ts";

export const SCOPES = ["search", "manage"] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKeyRecord {
  id: string;
  tenantId: string;
  name: string | null;
  prefix: string;
  scopes: Scope[];
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/** What authentication needs: the key's record and whether its tenant is disabled. */
export interface ApiKeyLookup extends ApiKeyRecord {
  tenantDisabled: boolean;
}

interface ApiKeyRow {
  id: string;
  tenant_id: string;
  name: string | null;
  prefix: string;
  scopes: string;
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

const COLUMN_NAMES = ["id", "tenant_id", "name", "prefix", "scopes", "created_at", "revoked_at", "last_used_at"];
/** Qualified for the join with tenants (which also has id, name, created_at). */
const COLUMNS = COLUMN_NAMES.map((c) => `k.${c}`).join(", ");

function toRecord(row: ApiKeyRow): ApiKeyRecord {
  // Unknown scope names (from a future version) are dropped, never granted.
  const scopes = (JSON.parse(row.scopes) as unknown[]).filter((s): s is Scope => SCOPES.includes(s as Scope));
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    prefix: row.prefix,
    scopes,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}

export interface NewApiKey {
  id: string;
  tenantId: string;
  name: string | null;
  keyHash: string;
  prefix: string;
  scopes: Scope[];
}

export async function insertApiKey(db: D1Database, key: NewApiKey): Promise<ApiKeyRecord> {
  const createdAt = nowIso();
  await db
    .prepare("INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
    .bind(key.id, key.tenantId, key.name, key.keyHash, key.prefix, JSON.stringify(key.scopes), createdAt)
    .run();
  return { id: key.id, tenantId: key.tenantId, name: key.name, prefix: key.prefix, scopes: key.scopes, createdAt, revokedAt: null, lastUsedAt: null };
}

/** Finds a key by the hash of the presented secret (revoked keys too: the caller decides). */
export async function findApiKeyByHash(db: D1Database, keyHash: string): Promise<ApiKeyLookup | null> {
  const row = await db
    .prepare(`SELECT ${COLUMNS}, t.disabled AS tenant_disabled FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = ?1`)
    .bind(keyHash)
    .first<ApiKeyRow & { tenant_disabled: number }>();
  return row ? { ...toRecord(row), tenantDisabled: row.tenant_disabled === 1 } : null;
}

export async function listApiKeys(db: D1Database, tenantId: string): Promise<ApiKeyRecord[]> {
  const { results } = await db
    .prepare(`SELECT ${COLUMNS} FROM api_keys k WHERE k.tenant_id = ?1 ORDER BY k.created_at, k.id`)
    .bind(tenantId)
    .all<ApiKeyRow>();
  return results.map(toRecord);
}

/** Revokes a tenant's key; idempotent (keeps the first revocation time). Null when no such key. */
export async function revokeApiKey(db: D1Database, tenantId: string, keyId: string): Promise<ApiKeyRecord | null> {
  const row = await db
    .prepare(`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) WHERE tenant_id = ?1 AND id = ?2 RETURNING ${COLUMN_NAMES.join(", ")}`)
    .bind(tenantId, keyId, nowIso())
    .first<ApiKeyRow>();
  return row ? toRecord(row) : null;
}

/**
 * Records use, at most once per `resolutionMs`, so a busy key does not turn every request into
 * a D1 write (the condition is evaluated in the UPDATE, so there is no read first).
 */
export async function touchApiKey(db: D1Database, keyId: string, resolutionMs = 60_000): Promise<void> {
  const now = new Date();
  const staleBefore = new Date(now.getTime() - resolutionMs).toISOString();
  await db
    .prepare("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)")
    .bind(keyId, now.toISOString(), staleBefore)
    .run();
}
