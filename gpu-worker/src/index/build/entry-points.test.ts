import { describe, expect, it } from "vitest";
import { clusteredEmbeddings } from "../../../../test/support/synthetic-corpus.ts";
import { kmeansEntryRows } from "./entry-points.ts";

describe("kmeansEntryRows", () => {
  it("returns distinct rows covering the clusters", () => {
    const dim = 8;
    const x = clusteredEmbeddings({ n: 4000, dim, clusters: 6, seed: 4, centreSpread: 10, clusterSpread: 0.1 });
    const rows = kmeansEntryRows(x, dim, { count: 12, seed: 1 });
    expect(new Set(rows).size).toBe(rows.length);
    expect(rows.length).toBeGreaterThan(6);
    expect(Math.max(...rows)).toBeLessThan(4000);
    expect(() => kmeansEntryRows(x, dim, { count: 0 })).toThrow(/count/);
  });
});
