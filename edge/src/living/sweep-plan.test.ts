import { describe, expect, it } from "vitest";
import type { MaintenanceVersion } from "../db/living.ts";
import { uploadsCursor } from "./maintenance.ts";
import { FUTURE_VERSIONS_KEPT, planSweep } from "./sweep-plan.ts";

const NOW = Date.parse("2030-01-01T12:00:00.000Z");
const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();
const v = (version: number, state: MaintenanceVersion["state"], coveredSeq: number, extra: Partial<MaintenanceVersion> = {}): MaintenanceVersion => ({
  version,
  state,
  kind: "build",
  coveredSeq,
  supersededAt: null,
  sweptAt: null,
  ...extra,
});
const future = (after: number) => Array.from({ length: FUTURE_VERSIONS_KEPT }, (_, i) => after + 1 + i);

describe("planSweep", () => {
  it("keeps the active version, versions within grace and building ones, and the next version numbers", () => {
    const plan = planSweep(
      [
        v(1, "ready", 1, { supersededAt: iso(NOW - 2 * HOUR) }),
        v(2, "ready", 4, { supersededAt: iso(NOW - HOUR + 1) }),
        v(3, "failed", 0),
        v(4, "ready", 6),
        v(5, "building", 7, { kind: "compaction" }),
      ],
      4,
      NOW,
      HOUR,
    );
    expect(plan).toEqual({ keepVersions: [2, 4, 5, ...future(5)], walUpToSeq: 4, collect: [1, 3] });
  });

  it("a version superseded exactly the grace period ago is collected; one already swept is not listed again", () => {
    const plan = planSweep([v(1, "ready", 1, { supersededAt: iso(NOW - HOUR) }), v(2, "failed", 0, { sweptAt: iso(NOW) }), v(3, "ready", 2)], 3, NOW, HOUR);
    expect(plan.collect).toEqual([1]);
    expect(plan.walUpToSeq).toBe(2);
  });

  it("walUpToSeq never exceeds the active version's covered seq, and is 0 for a never-built index", () => {
    expect(planSweep([v(1, "ready", 5), v(2, "building", 9)], 1, NOW, HOUR).walUpToSeq).toBe(5);
    expect(planSweep([v(1, "building", 3)], null, NOW, HOUR)).toEqual({ keepVersions: [1, ...future(1)], walUpToSeq: 0, collect: [] });
  });

  it("a ready, non-active version not yet marked superseded is kept", () => {
    expect(planSweep([v(1, "ready", 1), v(2, "ready", 2)], 2, NOW, HOUR).keepVersions.slice(0, 2)).toEqual([1, 2]);
  });
});

describe("uploadsCursor", () => {
  const u = (at: number, inUse = false) => ({ expiresAt: iso(at), inUse });
  it("moves over everything swept, stopping before the first upload in use and every upload sharing its expiry", () => {
    expect(uploadsCursor([u(1), u(2), u(3)], "", 10)).toBe(iso(3));
    expect(uploadsCursor([u(1), u(2), u(2, true), u(3)], "", 10)).toBe(iso(1));
    expect(uploadsCursor([u(1, true), u(2)], "start", 10)).toBe("start");
  });
  it("never moves into the last expiry time of a full page", () => {
    expect(uploadsCursor([u(1), u(2), u(2)], "", 3)).toBe(iso(1));
  });
});
