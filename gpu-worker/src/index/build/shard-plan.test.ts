import { describe, expect, it } from "vitest";
import { estimateDocBytes, SHARD_OVERHEAD_BYTES, ShardPlanner } from "./shard-plan.ts";

const doc = (i: number, text = "x".repeat(100)) => ({ id: `d${i}`, fields: { text } });

describe("shard planning", () => {
  it("estimates a document from embedding, graph row, id and fields", () => {
    const small = estimateDocBytes(doc(1, ""), { dim: 768, dtype: "float16", degree: 100 });
    expect(estimateDocBytes(doc(1, ""), { dim: 768, dtype: "float32", degree: 100 }) - small).toBe(768 * 2);
    expect(estimateDocBytes(doc(1, ""), { dim: 768, dtype: "float16", degree: 101 }) - small).toBe(4);
    expect(estimateDocBytes(doc(1, "é"), { dim: 768, dtype: "float16", degree: 100 }) - small).toBe(2); // UTF-8 bytes
  });

  it("splits on document boundaries so each shard's estimate stays under the target", () => {
    const options = { dim: 32, dtype: "float16" as const, degree: 16, shardBytes: 20_000 };
    const planner = new ShardPlanner(options);
    for (let i = 0; i < 500; i++) planner.add(doc(i));
    const counts = planner.counts();
    expect(counts.reduce((a, b) => a + b, 0)).toBe(500);
    const per = estimateDocBytes(doc(0), options);
    const capacity = Math.floor((options.shardBytes - SHARD_OVERHEAD_BYTES) / per);
    expect(counts.slice(0, -1).every((c) => c === capacity)).toBe(true);
    expect(counts.at(-1)).toBeLessThanOrEqual(capacity);
  });

  it("gives an oversized document a shard of its own, and no shards for no documents", () => {
    const planner = new ShardPlanner({ dim: 4, dtype: "float32", degree: 2, shardBytes: 70_000 });
    expect(planner.counts()).toEqual([]);
    planner.add(doc(0));
    planner.add(doc(1, "y".repeat(100_000)));
    planner.add(doc(2));
    expect(planner.counts()).toEqual([1, 1, 1]);
  });
});
