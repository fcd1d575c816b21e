/**
 * What one garbage-collection sweep of a live index keeps and deletes, computed from D1 alone (a
 * pure function, so the rules are tested without a worker):
 *
 * - keepVersions: the active version; ready versions superseded less than the grace period ago
 *   (searches that started before the flip may still read them); versions still building or
 *   compacting (their folder has no manifest yet; the worker keeps it whole); and the next
 *   FUTURE_VERSIONS_KEPT version numbers, because a build reserved after this D1 read, while the
 *   sweep runs, gets one of them and may already be writing shards.
 * - walUpToSeq: the smallest covered_seq of every kept version that exists (a version reads the WAL
 *   above its covered_seq), never above the active version's.
 * - versions to mark swept: those not kept and not yet swept (failed builds and compactions, versions
 *   superseded longer than the grace period ago).
 */
import type { MaintenanceVersion } from "../db/living.ts";

export const FUTURE_VERSIONS_KEPT = 16;

export interface SweepPlan {
  keepVersions: number[];
  walUpToSeq: number;
  /** Versions whose objects this sweep deletes (swept_at is set once the worker answers). */
  collect: number[];
}

export function planSweep(versions: readonly MaintenanceVersion[], activeVersion: number | null, now: number, graceMs: number): SweepPlan {
  const keep = new Set<number>();
  const active = versions.find((v) => v.version === activeVersion && v.state === "ready");
  if (activeVersion !== null) keep.add(activeVersion);
  for (const v of versions) {
    if (v.state === "building") keep.add(v.version);
    // A ready version with no superseded_at that is not active has not been marked yet: kept until it is.
    if (v.state === "ready" && (v.supersededAt === null || Date.parse(v.supersededAt) > now - graceMs)) keep.add(v.version);
  }
  const newest = versions.reduce((max, v) => Math.max(max, v.version), activeVersion ?? 0);
  for (let i = 1; i <= FUTURE_VERSIONS_KEPT; i++) keep.add(newest + i);

  const activeCovered = active?.coveredSeq ?? 0;
  const walUpToSeq = versions.filter((v) => keep.has(v.version) && v.state !== "failed").reduce((min, v) => Math.min(min, v.coveredSeq), activeCovered);
  const collect = versions.filter((v) => !keep.has(v.version) && v.sweptAt === null).map((v) => v.version);
  return { keepVersions: [...keep].sort((a, b) => a - b), walUpToSeq, collect };
}
