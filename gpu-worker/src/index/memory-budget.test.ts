import { describe, expect, it } from "vitest";
import { type EvictionCandidate, MemoryBudget } from "./memory-budget.ts";

/** A contributor with named entries: bytes, last use, and whether one is in use. */
function entries(list: Array<{ name: string; bytes: number; lastUsedMs: number; inUse?: boolean }>, evicted: string[]) {
  const live = new Map(list.map((e) => [e.name, e]));
  return {
    bytes: () => [...live.values()].reduce((n, e) => n + e.bytes, 0),
    evictable: (): EvictionCandidate[] =>
      [...live.values()]
        .filter((e) => !e.inUse)
        .map((e) => ({ lastUsedMs: e.lastUsedMs, bytes: e.bytes, evict: () => (live.delete(e.name), evicted.push(e.name)) })),
  };
}

describe("MemoryBudget", () => {
  it("evicts idle entries of all contributors, least recently used first, until under the budget", () => {
    const evicted: string[] = [];
    const budget = new MemoryBudget(100);
    budget.add("versions", entries([{ name: "v1", bytes: 60, lastUsedMs: 1 }, { name: "v2", bytes: 60, lastUsedMs: 5 }], evicted));
    budget.add("tails", entries([{ name: "t1", bytes: 30, lastUsedMs: 3 }], evicted));
    expect(budget.bytes()).toBe(150);
    expect(budget.enforce()).toEqual({ evicted: 1, bytesFreed: 60 });
    expect(evicted).toEqual(["v1"]);
    expect(budget.bytes()).toBe(90);
    expect(budget.enforce()).toEqual({ evicted: 0, bytesFreed: 0 });
    expect(budget.evictions).toBe(1);
  });

  it("never evicts an entry in use: the sum stays over the budget while it is", () => {
    const evicted: string[] = [];
    const budget = new MemoryBudget(10);
    budget.add("versions", entries([{ name: "busy", bytes: 50, lastUsedMs: 1, inUse: true }, { name: "idle", bytes: 5, lastUsedMs: 2 }], evicted));
    expect(budget.enforce()).toEqual({ evicted: 1, bytesFreed: 5 });
    expect(evicted).toEqual(["idle"]);
    expect(budget.bytes()).toBe(50);
  });

  it("removes a contributor, and refuses a budget that is not positive", () => {
    const budget = new MemoryBudget(1);
    const remove = budget.add("tails", { bytes: () => 7 });
    expect(budget.bytes()).toBe(7);
    remove();
    expect(budget.bytes()).toBe(0);
    expect(() => new MemoryBudget(0)).toThrow(RangeError);
  });
});
