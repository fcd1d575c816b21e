/**
 * The per-tenant search concurrency cap (SEARCH_CONCURRENCY_PER_TENANT), beside the per-key request
 * rate: a tenant's searches in flight may together cost at most that many units, where a search's
 * units grow with the work it asks of every shard (`searchCost`). Over the cap is a 429 with
 * Retry-After; a single search that costs more than the whole cap is a 400 that says which
 * parameter to lower, instead of being clamped silently.
 */
import { resolveSearchParams, type SearchParams, VARIANT_DEFAULTS } from "../../../shared/api/worker-api.ts";
import type { EdgeBindings } from "../env.ts";
import { ApiError } from "../errors.ts";
import { integerSetting } from "../integer-setting.ts";

export const DEFAULT_SEARCH_CONCURRENCY_PER_TENANT = 16;
/** Longer than any search can run (every owner's attempt timing out), so only a lost release waits this long. */
const LEASE_MS = 120_000;

/** One unit: the published walk's frontier (entryPoints 10,000, ncandidates 64). */
const UNIT = VARIANT_DEFAULTS.published;

/**
 * One unit is a search with the published walk's frontier (entryPoints 10,000, ncandidates 64), or
 * any smaller one (the default proxy walk); a larger frontier costs proportionally more
 * (entryPoints 1,000,000 is 100 units, ncandidates 1,024 is 16). Proxy seeds count as entry points.
 */
export function searchCost(params: SearchParams): number {
  const p = resolveSearchParams(params);
  // The proxy walk's per-shard default frontier (entryPoints left out) is a small share of the shard.
  return Math.max(1, Math.ceil(((p.entryPoints ?? 0) + p.proxySeeds) / UNIT.entryPoints), Math.ceil(p.ncandidates / UNIT.ncandidates));
}

/** SEARCH_CONCURRENCY_PER_TENANT: cost units in flight per tenant; 0 switches the cap off. */
export function searchConcurrencyPerTenant(value: string | undefined): number {
  return integerSetting("SEARCH_CONCURRENCY_PER_TENANT", value, DEFAULT_SEARCH_CONCURRENCY_PER_TENANT, { min: 0 });
}

/**
 * Takes the search's units from the tenant's cap, or throws 429/400. Resolves to the release, which
 * the caller runs once the search has ended (never throws; a lost release expires with its lease).
 */
export async function acquireSearchSlots(
  env: Pick<EdgeBindings, "SEARCH_CONCURRENCY" | "SEARCH_CONCURRENCY_PER_TENANT">,
  tenant: string,
  params: SearchParams,
): Promise<() => Promise<void>> {
  const limit = searchConcurrencyPerTenant(env.SEARCH_CONCURRENCY_PER_TENANT);
  if (limit === 0) return async () => {};
  const cost = searchCost(params);
  if (cost > limit) {
    const entryPointsMax = limit * UNIT.entryPoints;
    const ncandidatesMax = limit * UNIT.ncandidates;
    const p = resolveSearchParams(params);
    throw new ApiError(
      400,
      "search_too_expensive",
      `this search costs ${cost} units (entryPoints ${p.entryPoints ?? "per shard"}, proxySeeds ${p.proxySeeds}, ncandidates ${p.ncandidates}), more than this tenant's ${limit} concurrent units; use entryPoints + proxySeeds <= ${entryPointsMax} and ncandidates <= ${ncandidatesMax}`,
    );
  }
  const limiter = env.SEARCH_CONCURRENCY.get(env.SEARCH_CONCURRENCY.idFromName(tenant));
  const decision = await limiter.acquire(cost, limit, LEASE_MS);
  if (!decision.allowed || !decision.leaseId) {
    throw new ApiError(429, "too_many_concurrent_searches", `this tenant already has ${decision.inUse} of ${limit} search units in flight; retry shortly`, { "retry-after": "1" });
  }
  const leaseId = decision.leaseId;
  return () => limiter.release(leaseId).catch(() => {});
}
