import { describe, expect, it } from "vitest";
import { MERGE_POLICY, planMerges, type SegmentLiveness } from "./merge-policy.ts";

const seg = (id: string, docCount: number, deleted = 0): SegmentLiveness => ({ id, docCount, deleted });

describe("planMerges", () => {
  it("keeps large and few small segments, the tail on its own", () => {
    const plan = planMerges([seg("a", 100_000, 10), seg("b", 5_000), seg("c", 3_000), seg("d", 50)], 200);
    expect(plan).toEqual({ keep: ["a", "b", "c", "d"], merge: [], drop: [], mergeTail: false });
  });

  it(`merges all small segments and the tail once more than ${MERGE_POLICY.maxSmallSegments} are small`, () => {
    const plan = planMerges([seg("big", 50_000), seg("a", 10), seg("b", 19_999), seg("c", 30_000, 10_001), seg("d", 5)], 100);
    // a, b, c (19,999 live) and d: 4 small, and the tail makes 5.
    expect(plan).toEqual({ keep: ["big"], merge: ["a", "b", "c", "d"], drop: [], mergeTail: true });
    // Without a tail, 4 small segments stay as they are.
    expect(planMerges([seg("a", 10), seg("b", 10), seg("c", 10), seg("d", 10)], 0).merge).toEqual([]);
    // A large tail is not small: 4 small segments stay.
    expect(planMerges([seg("a", 10), seg("b", 10), seg("c", 10), seg("d", 10)], 20_000)).toMatchObject({ merge: [], mergeTail: false });
  });

  it("rewrites a segment more than half deleted and drops a fully deleted one", () => {
    const plan = planMerges([seg("a", 100_000, 50_001), seg("b", 100_000, 50_000), seg("gone", 7, 7)], 10);
    expect(plan).toEqual({ keep: ["b"], merge: ["a"], drop: ["gone"], mergeTail: false });
  });

  it("follows a custom policy", () => {
    const plan = planMerges([seg("a", 3), seg("b", 3)], 2, { smallLiveRows: 5, maxSmallSegments: 2, deletedShareMax: 0.5 });
    expect(plan).toEqual({ keep: [], merge: ["a", "b"], drop: [], mergeTail: true });
  });
});
