/**
 * Which version of an index a request reads, and its shards: one D1 read (db/indexes.ts
 * getActiveVersion), done before the cache lookup so the cache key holds the version. Search and
 * rerank-by-ids take the catalog as a dependency, so route tests can give them one without D1.
 */
import { type ActiveVersion, type ActiveVersionLookup, getActiveVersion } from "../db/indexes.ts";
import { ApiError } from "../errors.ts";

export type { ActiveVersion, ActiveVersionLookup } from "../db/indexes.ts";

export type SearchCatalog = (db: D1Database, tenantId: string, indexId: string) => Promise<ActiveVersionLookup>;

export const d1SearchCatalog: SearchCatalog = getActiveVersion;

/** The index's active version, or the client's error: 404 for no such index, 409 while none is built. */
export async function activeVersionOrThrow(catalog: SearchCatalog, db: D1Database, tenantId: string, indexId: string): Promise<ActiveVersion> {
  const lookup = await catalog(db, tenantId, indexId);
  if (lookup.ok) return lookup.active;
  throw lookup.reason === "not_found"
    ? new ApiError(404, "not_found", `index ${indexId} not found`)
    : new ApiError(409, "index_not_ready", `index ${indexId} has no built version yet`);
}
