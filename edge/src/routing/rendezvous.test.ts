import { describe, expect, it } from "vitest";
import { hash53, ownersFor, shardPlacementKey } from "./rendezvous.ts";
import { parseWorkerPool } from "./worker-pool.ts";

const pool = (n: number) => Array.from({ length: n }, (_, i) => `http://gpu-${i}.gpu:8081`);
const shards = Array.from({ length: 2000 }, (_, i) => shardPlacementKey("t1", "docs", 3, `s${i}`));

describe("rendezvous hashing", () => {
  it("is deterministic and returns every worker once", () => {
    const workers = pool(5);
    const a = ownersFor("t1/docs/v3/s0", workers);
    expect(a).toEqual(ownersFor("t1/docs/v3/s0", [...workers].reverse()));
    expect([...a].sort()).toEqual([...workers].sort());
    expect(hash53("abc")).toBe(hash53("abc"));
    expect(hash53("abc")).not.toBe(hash53("abd"));
  });

  it("spreads shards evenly over the pool", () => {
    const workers = pool(4);
    const counts = new Map<string, number>();
    for (const s of shards) counts.set(ownersFor(s, workers)[0]!, (counts.get(ownersFor(s, workers)[0]!) ?? 0) + 1);
    for (const w of workers) expect(counts.get(w)! / shards.length).toBeGreaterThan(0.2); // ideal 0.25
  });

  it("moves only the removed worker's shards, each to its next owner", () => {
    const workers = pool(5);
    const removed = workers[2]!;
    const smaller = workers.filter((w) => w !== removed);
    for (const s of shards) {
      const before = ownersFor(s, workers);
      const after = ownersFor(s, smaller);
      if (before[0] !== removed) expect(after[0]).toBe(before[0]);
      else expect(after[0]).toBe(before[1]);
    }
  });

  it("gives an added worker about 1/n of the shards and moves nothing else", () => {
    const workers = pool(4);
    const grown = [...workers, "http://gpu-4.gpu:8081"];
    let moved = 0;
    for (const s of shards) {
      const after = ownersFor(s, grown)[0];
      if (after !== ownersFor(s, workers)[0]) {
        expect(after).toBe("http://gpu-4.gpu:8081");
        moved++;
      }
    }
    expect(moved / shards.length).toBeGreaterThan(0.12);
    expect(moved / shards.length).toBeLessThan(0.28);
  });
});

describe("parseWorkerPool", () => {
  it("normalises, trims and de-duplicates", () => {
    expect(parseWorkerPool(" http://a:1/ , http://b:2,http://a:1,,")).toEqual(["http://a:1", "http://b:2"]);
    expect(parseWorkerPool(undefined)).toEqual([]);
  });
  it("refuses non-URLs and other schemes", () => {
    expect(() => parseWorkerPool("gpu-0:8081")).toThrow(/http\(s\)/);
    expect(() => parseWorkerPool("not a url")).toThrow(/not a URL/);
    expect(() => parseWorkerPool("http://a/?x=1")).toThrow();
  });
});
