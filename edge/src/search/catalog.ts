/**
 * Which version of an index a request reads, its shards, the seq it covers and the index's head seq:
 * one D1 read (db/indexes.ts getActiveVersion), done before the cache lookup so the cache key holds
 * the version and the head. Search and
 * rerank-by-ids take the catalog as a dependency, so route tests can give them one without D1.
 */
import { type ActiveVersion, type ActiveVersionLookup, getActiveVersion } from "../db/indexes.ts";
import type { TailRange } from "../../../shared/api/living-api.ts";
import { ApiError } from "../errors.ts";

export type { ActiveVersion, ActiveVersionLookup } from "../db/indexes.ts";

export type SearchCatalog = (db: D1Database, tenantId: string, indexId: string) => Promise<ActiveVersionLookup>;

export const d1SearchCatalog: SearchCatalog = getActiveVersion;

/**
 * The index's active version, or the client's error: 404 for no such index, 409 while there is
 * nothing to read. Version 0 (never built, only written to) is returned only with `tailOnly`:
 * searches and document reads see the tail, while reads of built segments (rerank by ids) need a version.
 */
export async function activeVersionOrThrow(catalog: SearchCatalog, db: D1Database, tenantId: string, indexId: string, options: { tailOnly?: boolean } = {}): Promise<ActiveVersion> {
  const lookup = await catalog(db, tenantId, indexId);
  if (lookup.ok && (lookup.active.version > 0 || options.tailOnly)) return lookup.active;
  if (lookup.ok) throw new ApiError(409, "index_not_ready", `index ${indexId} has no built version yet`);
  throw lookup.reason === "not_found"
    ? new ApiError(404, "not_found", `index ${indexId} not found`)
    : new ApiError(409, "index_not_ready", `index ${indexId} has no built version yet`);
}

/**
 * The WAL range a read must also see: (coveredSeq, headSeq] of the active version, or none when
 * nothing was written after it. Eventual reads skip it, except on a version without segments,
 * where the tail is all there is.
 */
export function tailToRead(active: ActiveVersion, consistency: "strong" | "eventual"): TailRange | undefined {
  if (active.headSeq <= active.coveredSeq) return undefined;
  if (consistency === "eventual" && active.shards.length > 0) return undefined;
  return { fromSeq: active.coveredSeq, toSeq: active.headSeq };
}
