/** Data access for `tenants`. */
import { isUniqueViolation, nowIso } from "./sql.ts";

export interface Tenant {
  id: string;
  name: string;
  createdAt: string;
  disabled: boolean;
}

interface TenantRow {
  id: string;
  name: string;
  created_at: string;
  disabled: number;
}

const toTenant = (row: TenantRow): Tenant => ({ id: row.id, name: row.name, createdAt: row.created_at, disabled: row.disabled === 1 });

/** The new tenant, or null when the id is taken. */
export async function createTenant(db: D1Database, id: string, name: string): Promise<Tenant | null> {
  const tenant: Tenant = { id, name, createdAt: nowIso(), disabled: false };
  try {
    await db.prepare("INSERT INTO tenants (id, name, created_at, disabled) VALUES (?1, ?2, ?3, 0)").bind(id, name, tenant.createdAt).run();
  } catch (error) {
    if (isUniqueViolation(error)) return null;
    throw error;
  }
  return tenant;
}

export async function getTenant(db: D1Database, id: string): Promise<Tenant | null> {
  const row = await db.prepare("SELECT id, name, created_at, disabled FROM tenants WHERE id = ?1").bind(id).first<TenantRow>();
  return row ? toTenant(row) : null;
}
