import { describe, expect, it } from "vitest";
import type { QNetArchitecture } from "../../../shared/qnet/types.ts";
import { randomQNet } from "../../../test/support/random-qnet.ts";
import { buildKnnGraph } from "../index/build/knn-graph.ts";
import { exhaustiveSearch } from "./exhaustive.ts";
import { type GraphSearchProgress, type NeighborGraph, graphSearch } from "./graph-search.ts";
import { seededRandom } from "./random.ts";
import type { RowScorer } from "./row-scorer.ts";
import { evaluatorRowScorer } from "./row-scorer.ts";
import { clusteredEmbeddings, recall } from "../../../test/support/synthetic-corpus.ts";

const ARCH: QNetArchitecture = {
  dims: [32, 32, 32, 1],
  activation: "relu",
  doLayerNorm: true,
  doResidual: true,
  doResidualOnLast: false,
  layerNormBeforeResidual: true,
};

/** A path graph 0 - 1 - … - (n-1) scored by f, recording each call's batch size. */
function pathGraph(n: number): NeighborGraph {
  const offsets = new Uint32Array(n + 1);
  const neighbors: number[] = [];
  for (let r = 0; r < n; r++) {
    if (r > 0) neighbors.push(r - 1);
    if (r < n - 1) neighbors.push(r + 1);
    offsets[r + 1] = neighbors.length;
  }
  return { offsets, neighbors: Uint32Array.from(neighbors) };
}
function fnScorer(f: (row: number) => number, calls: number[] = []): RowScorer {
  return {
    async scoreRows(rows) {
      calls.push(rows.length);
      return Float32Array.from(rows, f);
    },
  };
}

describe("graphSearch", () => {
  it("stops at the next step once its signal aborts, and exhaustive search at the next batch", async () => {
    const controller = new AbortController();
    const calls: number[] = [];
    // Abort from inside the second scoring call: the walk must not score a third frontier.
    const scorer = fnScorer((row) => {
      if (calls.length === 2) controller.abort(new Error("client went away"));
      return -Math.abs(row - 500);
    }, calls);
    await expect(
      graphSearch(scorer, pathGraph(1000), { entryPoints: 1, ncandidates: 1, maxIter: 50, earlyStop: false, signal: controller.signal }),
    ).rejects.toThrow("client went away");
    expect(calls).toHaveLength(2);

    const batches: number[] = [];
    await expect(exhaustiveSearch(fnScorer(() => 0, batches), 1000, { batchSize: 100, signal: AbortSignal.abort(new Error("gone")) })).rejects.toThrow("gone");
    expect(batches).toEqual([]);
  });

  it("equals exhaustive search when every document is an entry point", async () => {
    const dim = 32;
    const n = 3000;
    const x = clusteredEmbeddings({ n, dim, clusters: 8, seed: 11, latentDim: 4 });
    const graph = await buildKnnGraph(x, dim, { degree: 16 });
    const rand = seededRandom(5);
    for (let q = 0; q < 3; q++) {
      const scorer = evaluatorRowScorer(randomQNet(rand, ARCH), x, dim);
      const truth = await exhaustiveSearch(scorer, n, { k: 50, batchSize: 999 });
      // The proxy walk's seeds come after the first frontier: with every row in it, none is left to seed.
      const seedRows = async () => Uint32Array.of(0, 1, 2);
      for (const variant of ["published", "best-first", "proxy"] as const) {
        const found = await graphSearch(scorer, graph, { k: 50, entryPoints: n, maxIter: 1000, variant, seedRows });
        expect(found.hits).toEqual(truth.hits);
        expect(found.stats.docsScored).toBe(n);
        expect(found.stats.stoppedBy).toBe("empty");
      }
    }
  });

  it("reaches recall@10 ≥ 0.95 with the default parameters on a clustered 100k corpus", async () => {
    const dim = 32;
    const n = 100_000;
    // 64 Gaussian clusters, each spread along 4 latent directions (see clusteredEmbeddings).
    const x = clusteredEmbeddings({ n, dim, clusters: 64, seed: 1, latentDim: 4 });
    const graph = await buildKnnGraph(x, dim); // degree 100, usearch HNSW
    expect(graph.builder).toBe("usearch-hnsw");
    const rand = seededRandom(7);
    const queries = 10;
    let total = 0;
    for (let q = 0; q < queries; q++) {
      const scorer = evaluatorRowScorer(randomQNet(rand, ARCH), x, dim);
      const truth = await exhaustiveSearch(scorer, n, { k: 10 });
      const found = await graphSearch(scorer, graph, { seed: q });
      expect(found.stats.docsScored).toBeLessThan(n / 4);
      total += recall(found.hits, truth.hits);
    }
    expect(total / queries).toBeGreaterThanOrEqual(0.95);
  }, 90_000);

  it("is reproducible per seed and scores each step in one call", async () => {
    const n = 500;
    const graph = pathGraph(n);
    const calls: number[] = [];
    const f = (r: number) => Math.sin(r / 7) + r / 1000;
    const a = await graphSearch(fnScorer(f, calls), graph, { k: 5, entryPoints: 20, ncandidates: 4, seed: 9 });
    const b = await graphSearch(fnScorer(f), graph, { k: 5, entryPoints: 20, ncandidates: 4, seed: 9 });
    expect(a).toMatchObject({ hits: b.hits });
    expect(calls).toHaveLength(a.stats.iterations);
    expect(calls[0]).toBe(20);
    expect(calls.reduce((s, c) => s + c, 0)).toBe(a.stats.docsScored);
  });

  it("takes at most entryPoints entry rows, and fills up with random rows after them", async () => {
    const calls: number[] = [];
    const first = async (options: Parameters<typeof graphSearch>[2]) => {
      const progress: GraphSearchProgress[] = [];
      await graphSearch(fnScorer((r) => r, calls), pathGraph(100), { ...options, maxIter: 1, onIteration: (p) => progress.push(p) });
      return progress[0]!.scored;
    };
    expect(await first({ entryRows: Uint32Array.of(5, 50, 95), entryPoints: 2 })).toBe(2);
    expect(await first({ entryRows: Uint32Array.of(5, 50, 95), entryPoints: 10 })).toBe(10);
    // The entry rows come first: with entryPoints 1 only row 5 is scored, whatever the seed.
    const top = await graphSearch(fnScorer((r) => r), pathGraph(100), { k: 1, entryRows: Uint32Array.of(5, 95), entryPoints: 1, maxIter: 1 });
    expect(top.hits.map((h) => h.row)).toEqual([5]);
  });

  it("follows the published semantics: expands the best of the current frontier", async () => {
    // Path graph, score = row: from entry rows {0, 10}, the walk climbs towards n - 1.
    const n = 40;
    const progress: GraphSearchProgress[] = [];
    const result = await graphSearch(fnScorer((r) => r), pathGraph(n), {
      k: 2,
      entryRows: Uint32Array.of(10, 0),
      entryPoints: 2,
      ncandidates: 1,
      maxIter: 5,
      onIteration: (p) => progress.push(p),
    });
    // Step 1 scores {10, 0}, expands 10 → {9, 11}; step 2 expands 11 → {12}; … step 5 scores {14}.
    expect(progress.map((p) => p.scored)).toEqual([2, 4, 5, 6, 7]);
    expect(progress.map((p) => p.topK.map((h) => h.row))).toEqual([[10, 0], [11, 10], [12, 11], [13, 12], [14, 13]]);
    expect(result.hits.map((h) => h.row)).toEqual([14, 13]);
    expect(result.stats).toMatchObject({ iterations: 5, docsScored: 7, stoppedBy: "max_iter" });
  });

  it("stops early when nothing enters the top k, and when the frontier is empty", async () => {
    // Score peaks at row 3; from entry row 0 the walk passes it and finds only worse rows.
    const n = 30;
    const early = await graphSearch(fnScorer((r) => -Math.abs(r - 3)), pathGraph(n), {
      k: 1, entryRows: Uint32Array.of(0), entryPoints: 1, ncandidates: 1, maxIter: 100,
    });
    // Steps: {0}, {1}, {2}, {3}, {4} — row 4 does not beat row 3.
    expect(early.stats).toMatchObject({ iterations: 5, stoppedBy: "early_stop" });
    expect(early.hits.map((h) => h.row)).toEqual([3]);

    const full = await graphSearch(fnScorer((r) => -Math.abs(r - 3)), pathGraph(n), {
      k: 1, entryRows: Uint32Array.of(0), entryPoints: 1, ncandidates: 1, maxIter: 100, earlyStop: false,
    });
    expect(full.stats).toMatchObject({ iterations: n, docsScored: n, stoppedBy: "empty" });

    const bestFirst = await graphSearch(fnScorer((r) => -Math.abs(r - 3)), pathGraph(n), {
      k: 1, entryRows: Uint32Array.of(0), entryPoints: 1, ncandidates: 1, maxIter: 100, variant: "best-first",
    });
    expect(bestFirst.stats.stoppedBy).toBe("early_stop");
    expect(bestFirst.hits.map((h) => h.row)).toEqual([3]);
  });

  it("walks through dead rows but never returns them (both variants)", async () => {
    const dead = new Set(Array.from({ length: 11 }, (_, i) => 495 + i));
    for (const variant of ["published", "best-first"] as const) {
      const scored: number[] = [];
      const scorer: RowScorer = {
        async scoreRows(rows) {
          scored.push(...rows);
          return Float32Array.from(rows, (r) => -Math.abs(r - 500));
        },
      };
      const options = { k: 3, entryPoints: 1, entryRows: Uint32Array.of(490), ncandidates: 1, maxIter: 40, earlyStop: false, variant };
      const live = await graphSearch(scorer, pathGraph(1000), { ...options, isDead: (r) => dead.has(r) });
      // The best live rows lie on both sides of the dead run: reaching 506 means walking through it.
      expect(live.hits.map((h) => h.row), variant).toEqual([494, 506, 493]);
      expect(scored.filter((r) => dead.has(r)).length, variant).toBe(dead.size);
      const all = await graphSearch(scorer, pathGraph(1000), options);
      expect(all.hits.map((h) => h.row), variant).toEqual([500, 499, 501]);
    }
  });

  it("the published early stop does not fire on a frontier of dead rows only (a filter no row near the entry matches)", async () => {
    // Entry at 0 (dead), the only live rows beyond 5: every frontier until row 6 holds no live row.
    const isDead = (r: number) => r < 6;
    const scorer = fnScorer((r) => -r);
    const got = await graphSearch(scorer, pathGraph(20), { k: 2, entryPoints: 1, entryRows: Uint32Array.of(0), ncandidates: 1, maxIter: 40, earlyStop: true, isDead });
    expect(got.hits.map((h) => h.row)).toEqual([6, 7]);
    // Once live rows were seen, a frontier that adds nothing to the top-k still stops the walk early.
    expect(got.stats.stoppedBy).toBe("early_stop");
  });

  describe("variant proxy", () => {
    // Path graph with the peak at row 800, far from the entry rows: a walk from them needs hundreds of
    // steps; seeds next to the peak let it finish in a few.
    const peak = (r: number) => -Math.abs(r - 800);

    it("scores the first frontier, asks seedRows with its best hits, scores the seeds next, then walks best-first", async () => {
      const calls: number[][] = [];
      const scorer: RowScorer = {
        async scoreRows(rows) {
          calls.push([...rows]);
          return Float32Array.from(rows, peak);
        },
      };
      const asked: { best: number[]; count: number }[] = [];
      const result = await graphSearch(scorer, pathGraph(1000), {
        variant: "proxy",
        k: 3,
        entryRows: Uint32Array.of(10, 20),
        entryPoints: 2,
        proxySeeds: 4,
        ncandidates: 2,
        maxIter: 50,
        seedRows: async (best, count) => {
          asked.push({ best: best.map((h) => h.row), count });
          return Uint32Array.of(790, 20, 795, 790); // 20 was scored already; 790 twice
        },
      });
      expect(asked).toEqual([{ best: [20, 10], count: 4 }]);
      expect(calls[0]).toEqual([10, 20]);
      expect(calls[1]).toEqual([790, 795]);
      expect(result.hits.map((h) => h.row)).toEqual([800, 799, 801]);
      expect(result.stats.docsScored).toBeLessThan(40);
      expect(result.stats.stoppedBy).toBe("early_stop");
    });

    it("sizes its default first frontier by the shard: the entry rows plus 0.075% of the rows (at least 32)", async () => {
      const first = async (n: number, entryRows: number) => {
        const progress: GraphSearchProgress[] = [];
        const rows = Uint32Array.from({ length: entryRows }, (_, i) => i);
        await graphSearch(fnScorer(peak), pathGraph(n), { variant: "proxy", entryRows: rows, maxIter: 1, onIteration: (p) => progress.push(p) });
        return progress[0]!.scored;
      };
      expect(await first(100_000, 256)).toBe(256 + 75);
      expect(await first(10_000, 256)).toBe(256 + 32);
      expect(await first(200, 100)).toBe(132);
      expect(await first(100, 90)).toBe(100);
    });

    it("is plain best-first without seedRows, or with proxySeeds 0", async () => {
      const f = fnScorer(peak);
      const options = { k: 3, entryRows: Uint32Array.of(10), entryPoints: 1, ncandidates: 2, maxIter: 30, earlyStop: false };
      const bestFirst = await graphSearch(f, pathGraph(1000), { ...options, variant: "best-first" });
      expect(await graphSearch(f, pathGraph(1000), { ...options, variant: "proxy" })).toMatchObject({ hits: bestFirst.hits, stats: { docsScored: bestFirst.stats.docsScored } });
      let asked = 0;
      const noSeeds = await graphSearch(f, pathGraph(1000), { ...options, variant: "proxy", proxySeeds: 0, seedRows: async () => (asked++, Uint32Array.of(800)) });
      expect(asked).toBe(0);
      expect(noSeeds.hits).toEqual(bestFirst.hits);
    });

    it("refuses seeds outside the shard, and stops between steps once aborted (also while seeding)", async () => {
      await expect(
        graphSearch(fnScorer(peak), pathGraph(100), { variant: "proxy", entryPoints: 1, seedRows: async () => Uint32Array.of(100) }),
      ).rejects.toThrow(/seedRows returned row 100/);
      const controller = new AbortController();
      const calls: number[] = [];
      await expect(
        graphSearch(fnScorer(peak, calls), pathGraph(1000), {
          variant: "proxy",
          entryPoints: 1,
          maxIter: 50,
          signal: controller.signal,
          seedRows: async () => {
            controller.abort(new Error("client went away"));
            return Uint32Array.of(790);
          },
        }),
      ).rejects.toThrow("client went away");
      // The seeds were never scored.
      expect(calls).toEqual([1]);
    });
  });

  it("validates its parameters", async () => {
    const graph = pathGraph(10);
    const s = fnScorer((r) => r);
    await expect(graphSearch(s, graph, { k: 0 })).rejects.toThrow(/k must be an integer ≥ 1, got 0/);
    await expect(graphSearch(s, graph, { entryPoints: 1.5 })).rejects.toThrow(/entryPoints must be an integer/);
    await expect(graphSearch(s, graph, { ncandidates: -1 })).rejects.toThrow(/ncandidates/);
    await expect(graphSearch(s, graph, { maxIter: 0 })).rejects.toThrow(/maxIter/);
    await expect(graphSearch(s, graph, { proxySeeds: -1 })).rejects.toThrow(/proxySeeds/);
    await expect(graphSearch(s, graph, { earlyStop: "yes" as unknown as boolean })).rejects.toThrow(/earlyStop must be a boolean/);
    await expect(graphSearch(s, graph, { variant: "greedy" as "published" })).rejects.toThrow(/variant must be one of proxy, best-first, published/);
    await expect(graphSearch(s, graph, { entryRows: Uint32Array.of(10) })).rejects.toThrow(/entryRows contains row 10/);
    await expect(graphSearch(s, { offsets: Uint32Array.of(0, 5), neighbors: new Uint32Array(2) })).rejects.toThrow(/graph.offsets/);
    await expect(graphSearch(s, { offsets: Uint32Array.of(0, 1), neighbors: Uint32Array.of(7) }, { entryPoints: 1 })).rejects.toThrow(
      /neighbour 7/,
    );
    // Caps, not errors: k and entryPoints above the corpus size.
    const capped = await graphSearch(s, graph, { k: 100, entryPoints: 1000 });
    expect(capped.hits).toHaveLength(10);
  });
});
