/** Data access for the `uploads` table (edge/migrations/0001_init.sql); every query is scoped by tenant. */
import { jsonColumn, nowIso } from "./sql.ts";
import type { StoredUploadFile } from "../uploads/schemas.ts";

export interface UploadRecord {
  tenantId: string;
  id: string;
  indexId: string;
  files: StoredUploadFile[];
  expiresAt: string;
  createdAt: string;
}

interface UploadRow {
  tenant_id: string;
  id: string;
  index_id: string;
  files: string;
  expires_at: string;
  created_at: string;
}

export async function insertUpload(db: D1Database, upload: Omit<UploadRecord, "createdAt">): Promise<UploadRecord> {
  const createdAt = nowIso();
  await db
    .prepare("INSERT INTO uploads (tenant_id, id, index_id, files, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
    .bind(upload.tenantId, upload.id, upload.indexId, JSON.stringify(upload.files), upload.expiresAt, createdAt)
    .run();
  return { ...upload, createdAt };
}

/** An upload of this tenant for this index; null otherwise (another tenant's id looks missing). */
export async function getUpload(db: D1Database, tenantId: string, indexId: string, id: string): Promise<UploadRecord | null> {
  const row = await db
    .prepare("SELECT tenant_id, id, index_id, files, expires_at, created_at FROM uploads WHERE tenant_id = ?1 AND id = ?2 AND index_id = ?3")
    .bind(tenantId, id, indexId)
    .first<UploadRow>();
  if (!row) return null;
  return { tenantId: row.tenant_id, id: row.id, indexId: row.index_id, files: jsonColumn<StoredUploadFile[]>(row.files) ?? [], expiresAt: row.expires_at, createdAt: row.created_at };
}
