/** Merging per-worker answers into one: top-k hits and summed statistics. */
import type { Hit, SearchStats } from "../../../shared/api/worker-api.ts";

/** Best first: score descending, then id ascending, so equal scores order the same on every run. */
export function compareHits(a: Hit, b: Hit): number {
  return b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * The global top-k of several top-k lists. Shards hold disjoint documents, but a retried shard group
 * could in principle answer twice; an id is kept once, with its best hit.
 */
export function mergeTopK(lists: readonly (readonly Hit[])[], k: number): Hit[] {
  const best = new Map<string, Hit>();
  for (const list of lists) {
    for (const hit of list) {
      const seen = best.get(hit.id);
      if (!seen || compareHits(hit, seen) < 0) best.set(hit.id, hit);
    }
  }
  return [...best.values()].sort(compareHits).slice(0, k);
}

/** How a filtered search ran on a shard (README "Filters"): walking the graph, or scoring the matching rows. */
export type FilterPlan = "filtered-walk" | "filtered-exhaustive";

/**
 * A worker answer's filter plan, if it reports one. Read through `unknown` so this compiles whether
 * or not SearchStats declares `plan` yet, and so a value outside the two plans is ignored.
 */
export function filterPlanOf(stats: SearchStats): FilterPlan | undefined {
  const plan = (stats as { plan?: unknown }).plan;
  return plan === "filtered-walk" || plan === "filtered-exhaustive" ? plan : undefined;
}

/** One plan for the whole answer: "filtered-walk" if any shard walked, else "filtered-exhaustive"; none when no shard filtered. */
export function mergeFilterPlans(parts: readonly SearchStats[]): FilterPlan | undefined {
  const plans = parts.map(filterPlanOf);
  if (plans.includes("filtered-walk")) return "filtered-walk";
  return plans.includes("filtered-exhaustive") ? "filtered-exhaustive" : undefined;
}

/**
 * Work adds up across workers; iterations and per-phase times are the slowest worker's (they ran in
 * parallel); a filtered search's plan is merged by mergeFilterPlans.
 */
export function mergeStats(parts: readonly SearchStats[], totalMs: number): SearchStats {
  const max = (pick: (s: SearchStats) => number) => parts.reduce((m, s) => Math.max(m, pick(s)), 0);
  const merged: SearchStats = {
    docsScored: parts.reduce((n, s) => n + s.docsScored, 0),
    iterations: max((s) => s.iterations),
    shardsSearched: parts.reduce((n, s) => n + s.shardsSearched, 0),
    ms: { queue: max((s) => s.ms.queue), encode: max((s) => s.ms.encode), search: max((s) => s.ms.search), total: totalMs },
  };
  const plan = mergeFilterPlans(parts);
  return plan ? Object.assign(merged, { plan }) : merged;
}
