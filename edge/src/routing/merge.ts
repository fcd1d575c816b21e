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

/** Work adds up across workers; iterations and per-phase times are the slowest worker's (they ran in parallel). */
export function mergeStats(parts: readonly SearchStats[], totalMs: number): SearchStats {
  const max = (pick: (s: SearchStats) => number) => parts.reduce((m, s) => Math.max(m, pick(s)), 0);
  return {
    docsScored: parts.reduce((n, s) => n + s.docsScored, 0),
    iterations: max((s) => s.iterations),
    shardsSearched: parts.reduce((n, s) => n + s.shardsSearched, 0),
    ms: { queue: max((s) => s.ms.queue), encode: max((s) => s.ms.encode), search: max((s) => s.ms.search), total: totalMs },
  };
}
