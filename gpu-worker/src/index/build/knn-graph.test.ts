import { describe, expect, it } from "vitest";
import { clusteredEmbeddings } from "../../../../test/support/synthetic-corpus.ts";
import { addReverseLinks, buildKnnGraph, reachableFraction } from "./knn-graph.ts";

/** Neighbours by sorting all squared distances (the obviously correct reference). */
function naiveNeighbors(x: Float32Array, dim: number, row: number, degree: number): number[] {
  const n = x.length / dim;
  const dist = (j: number) => {
    let s = 0;
    for (let k = 0; k < dim; k++) s += (x[row * dim + k]! - x[j * dim + k]!) ** 2;
    return s;
  };
  return Array.from({ length: n }, (_, j) => j)
    .filter((j) => j !== row)
    .map((j) => [j, dist(j)] as const)
    .sort((a, b) => a[1] - b[1] || a[0] - b[0])
    .slice(0, degree)
    .map(([j]) => j);
}

const rowsOf = (g: { offsets: Uint32Array; neighbors: Uint32Array }, r: number) => Array.from(g.neighbors.subarray(g.offsets[r], g.offsets[r + 1]));

describe("buildKnnGraph", () => {
  it("builds the exact graph for small shards, nearest first, self excluded", async () => {
    const dim = 7;
    const x = clusteredEmbeddings({ n: 203, dim, clusters: 5, seed: 2 });
    const fractions: number[] = [];
    const g = await buildKnnGraph(x, dim, { degree: 12, reverseShare: 0, onProgress: (f) => fractions.push(f) });
    expect(g.builder).toBe("exact");
    expect(g.degree).toBe(12);
    expect(g.offsets).toHaveLength(204);
    for (let r = 0; r < 203; r++) expect(rowsOf(g, r)).toEqual(naiveNeighbors(x, dim, r, 12));
    expect(fractions.at(-1)).toBe(1);
  });

  it("uses usearch HNSW for large shards, close to the exact graph", async () => {
    const dim = 16;
    const x = clusteredEmbeddings({ n: 3000, dim, clusters: 8, seed: 3, latentDim: 4 });
    const fractions: number[] = [];
    const approx = await buildKnnGraph(x, dim, { degree: 20, exactBelow: 0, reverseShare: 0, onProgress: (f) => fractions.push(f) });
    const exact = await buildKnnGraph(x, dim, { degree: 20, exactBelow: 10_000, reverseShare: 0 });
    expect(approx.builder).toBe("usearch-hnsw");
    expect(exact.builder).toBe("exact");
    let found = 0;
    for (let r = 0; r < 3000; r++) {
      const got = rowsOf(approx, r);
      expect(got).not.toContain(r);
      expect(got.length).toBeLessThanOrEqual(20);
      const want = new Set(rowsOf(exact, r));
      found += got.filter((j) => want.has(j)).length;
    }
    expect(found / (3000 * 20)).toBeGreaterThan(0.95);
    expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
    expect(fractions.at(-1)).toBe(1);
  });

  it("gives rows nobody lists reverse links, without exceeding the degree", async () => {
    // Points 0, 1, 2, 3 and an outlier at 100: every row's nearest neighbour is another inlier, so
    // in the kNN graph nothing points at the outlier and graph search could never reach it.
    const x = Float32Array.of(0, 1, 2, 3, 100);
    const knn = await buildKnnGraph(x, 1, { degree: 2, reverseShare: 0 });
    expect([0, 1, 2, 3, 4].map((r) => rowsOf(knn, r))).toEqual([[1, 2], [0, 2], [1, 3], [2, 1], [3, 2]]);
    // Half the slots for reverse links: each row keeps its nearest, then the best-ranked row that
    // lists it, else its next-nearest again (rows 0 and 4).
    const linked = await addReverseLinks(knn, 0.5);
    expect(linked).toMatchObject({ degree: 2, reverseSlots: 1, builder: "exact" });
    expect([0, 1, 2, 3, 4].map((r) => rowsOf(linked, r))).toEqual([[1, 2], [0, 2], [1, 3], [2, 4], [3, 2]]);
    expect(await addReverseLinks(linked, 0.5)).toBe(linked); // already linked: unchanged
    expect(await buildKnnGraph(x, 1, { degree: 2, reverseShare: 0.5 })).toEqual(linked);
    await expect(buildKnnGraph(x, 1, { reverseShare: 0.6 })).rejects.toThrow(/reverseShare must be in \[0, 0.5\]/);
  });

  it("keeps each row's nearest neighbours and only adds rows that list it (default share)", async () => {
    const dim = 8;
    const n = 2000;
    const x = clusteredEmbeddings({ n, dim, clusters: 6, seed: 9, latentDim: 3 });
    const knn = await buildKnnGraph(x, dim, { degree: 20, reverseShare: 0 });
    const g = await buildKnnGraph(x, dim, { degree: 20 });
    expect(g.reverseSlots).toBe(4);
    const listers = Array.from({ length: n }, () => new Set<number>());
    for (let u = 0; u < n; u++) for (const v of rowsOf(knn, u).slice(0, 16)) listers[v]!.add(u);
    for (let r = 0; r < n; r++) {
      const row = rowsOf(g, r);
      expect(row.length).toBe(20);
      expect(new Set(row).size).toBe(20);
      expect(row).not.toContain(r);
      expect(row.slice(0, 16)).toEqual(rowsOf(knn, r).slice(0, 16));
      const nearest = new Set(rowsOf(knn, r));
      for (const extra of row.slice(16)) expect(nearest.has(extra) || listers[r]!.has(extra)).toBe(true);
    }
    // Every row some other row lists as a near neighbour is now reachable along an edge into it.
    const inDegree = (graph: typeof g) => {
      const d = new Uint32Array(n);
      for (const v of graph.neighbors) d[v]++;
      return d;
    };
    const before = inDegree(knn).filter((d) => d === 0).length;
    expect(inDegree(g).filter((d) => d === 0).length).toBeLessThanOrEqual(before);
    expect(reachableFraction(g, 5, 1)).toBeGreaterThanOrEqual(reachableFraction(knn, 5, 1));
  });

  it("caps the degree at n - 1 and handles tiny shards", async () => {
    const g = await buildKnnGraph(Float32Array.of(0, 1, 5), 1, { degree: 100 });
    expect(g.degree).toBe(2);
    expect(rowsOf(g, 0)).toEqual([1, 2]);
    expect(rowsOf(g, 2)).toEqual([1, 0]);
    const one = await buildKnnGraph(Float32Array.of(1, 2), 2);
    expect([one.degree, one.offsets.length, one.neighbors.length]).toEqual([0, 2, 0]);
    expect((await buildKnnGraph(new Float32Array(0), 4)).offsets).toEqual(Uint32Array.of(0));
  });

  it("rejects bad arguments", async () => {
    await expect(buildKnnGraph(new Float32Array(5), 2)).rejects.toThrow(/not a whole number of 2-wide rows/);
    await expect(buildKnnGraph(new Float32Array(4), 2, { degree: 0 })).rejects.toThrow(/degree must be a positive integer/);
    await expect(buildKnnGraph(new Float32Array(4), 0)).rejects.toThrow(RangeError);
  });
});

describe("reachableFraction", () => {
  // Two 3-cliques: 0-1-2 and 3-4-5.
  const graph = {
    offsets: Uint32Array.of(0, 2, 4, 6, 8, 10, 12),
    neighbors: Uint32Array.of(1, 2, 0, 2, 0, 1, 4, 5, 3, 5, 3, 4),
  };

  it("counts the rows reachable from the entry points", () => {
    expect(reachableFraction(graph, 1, 1)).toBe(0.5);
    expect(reachableFraction(graph, 6, 1)).toBe(1);
    expect(reachableFraction({ offsets: Uint32Array.of(0), neighbors: new Uint32Array(0) }, 3, 0)).toBe(1);
    expect(() => reachableFraction(graph, 0, 1)).toThrow(RangeError);
  });
});
