/**
 * What the graph-search benchmarks share: the walks compared (published, best-first, proxy-seeded,
 * each at a few settings so each draws a curve), running them against exhaustive answers, the table,
 * and the SVG of recall@10 against documents scored.
 *
 * Proxy seeds come from an inner-product index over the corpus (the shard's `proxyIndex` section in
 * the service), queried with the q-net's gradient (shared/qnet/gradient.ts) at a point: the best
 * row of the first frontier ("at best"), or the corpus mean ("at mean", one step fewer to wait for).
 */
import { writeFile } from "node:fs/promises";
import type { QNet } from "../shared/qnet/types.ts";
import { qnetGradient } from "../shared/qnet/gradient.ts";
import { type GraphSearchOptions, graphSearch, type NeighborGraph } from "../gpu-worker/src/search/graph-search.ts";
import type { RowScorer } from "../gpu-worker/src/search/row-scorer.ts";
import type { RowHit } from "../gpu-worker/src/search/topk.ts";
import { recall } from "../test/support/synthetic-corpus.ts";
import { PROXY_GRADIENT_POINTS, proxyGradientPoints } from "../gpu-worker/src/index/proxy-seeds.ts";
import { percentile } from "./stats.ts";

/** Rows by inner product with a vector, best first. */
export interface InnerProductIndex {
  search(vector: Float32Array, count: number): Uint32Array;
}

/**
 * The proxy: the gradient at the first frontier's best row, at its best PROXY_GRADIENT_POINTS, or at
 * the corpus mean; or ("query") no gradient but the query text's own embedding by the shared
 * encoder (the official code's embedding_representation idea), where the model provides one.
 */
/** Where the gradient is taken: the first frontier's best row, its best PROXY_GRADIENT_POINTS (4, as the service; the seeds shared out), or the corpus mean. */
export type ProxyPoint = "best" | "top4" | "service" | "mean" | "query";

export interface Config {
  /** Curve the point belongs to (one colour in the SVG). */
  family: string;
  /** This point's setting, for the table. */
  label: string;
  options: GraphSearchOptions;
  /** Proxy-seeded: where the gradient is taken. */
  proxyAt?: ProxyPoint;
  /**
   * The published STEP from proxy seeds: the seeds (gradient at the corpus mean, taken before any
   * scoring) join the entry rows of a published walk, instead of following a first frontier.
   */
  seedsAsEntryRows?: number;
}

/** The comparisons: the published walk's entry-set sweep (its only cost knob), best-first, and the proxy walks. */
export function standardConfigs(entryRows: Uint32Array | undefined): Config[] {
  const rows = entryRows ? { entryRows } : {};
  const configs: Config[] = [];
  for (const entryPoints of [2500, 5000, 10_000]) {
    configs.push({ family: "published", label: `entryPoints ${entryPoints}`, options: { variant: "published", entryPoints, ...rows } });
  }
  for (const entryPoints of [2500, 10_000]) {
    configs.push({ family: "best-first", label: `entryPoints ${entryPoints}`, options: { variant: "best-first", entryPoints, ...rows } });
  }
  for (const [proxySeeds, ncandidates] of [
    [64, 4],
    [128, 8],
    [256, 16],
    [512, 16],
    [1024, 32],
  ] as const) {
    configs.push({
      family: "proxy (gradient at best)",
      label: `seeds ${proxySeeds}, ncand ${ncandidates}`,
      options: { variant: "proxy", proxySeeds, ncandidates, ...rows },
      proxyAt: "best",
    });
  }
  // A wider first frontier, for q-nets that prefer no region (the synthetic "random" case).
  for (const entryPoints of [1000, 2500]) {
    configs.push({
      family: "proxy (gradient at best 4)",
      label: `entryPoints ${entryPoints}, seeds 256, ncand 16`,
      options: { variant: "proxy", entryPoints, proxySeeds: 256, ncandidates: 16, ...rows },
      proxyAt: "top4",
    });
  }
  for (const [proxySeeds, ncandidates] of [
    [256, 16],
    [1024, 32],
  ] as const) {
    configs.push({
      family: "proxy (gradient at best 4)",
      label: `seeds ${proxySeeds}, ncand ${ncandidates}`,
      options: { variant: "proxy", proxySeeds, ncandidates, ...rows },
      proxyAt: "top4",
    });
    configs.push({
      family: "proxy (gradient at mean)",
      label: `seeds ${proxySeeds}, ncand ${ncandidates}`,
      options: { variant: "proxy", proxySeeds, ncandidates, ...rows },
      proxyAt: "mean",
    });
  }
  // The other step the proxy seeds can start: the published one (the issue's "whichever measures better").
  for (const seeds of [256, 1024]) {
    configs.push({ family: "proxy seeds, published step", label: `seeds ${seeds}, ncand 16`, options: { variant: "published", ncandidates: 16, maxIter: 64 }, seedsAsEntryRows: seeds });
  }
  // What the service runs: the variant's defaults, gradients at as many best rows as proxyGradientPoints allows (4 for small q-nets, 1 for 768-d).
  configs.push({ family: "proxy default", label: "service defaults", options: { variant: "proxy", ...rows }, proxyAt: "service" });
  return configs;
}

export interface Point {
  family: string;
  label: string;
  recall: number;
  docsFraction: number;
  p50ms: number;
  p95ms: number;
  iterations: number;
}

interface Sample {
  recall: number[];
  docs: number[];
  ms: number[];
  iters: number[];
}

export interface QueryCase {
  qnet: QNet;
  scorer: RowScorer;
  truth: readonly RowHit[];
  /** The exhaustive pass's time, for the table. */
  exhaustiveMs: number;
  /** The query text embedded as a document (trained models only), for the "query" proxy. */
  queryVector?: Float32Array;
}

export interface CurveInput {
  n: number;
  k: number;
  graph: NeighborGraph;
  /** Float32 row `r` of the corpus (for the gradient point). */
  row: (r: number) => Float32Array;
  mean: Float32Array;
  ipIndex: InnerProductIndex;
  /** The shard's k-means entry rows (for the published step from proxy seeds). */
  entryRows?: Uint32Array;
  configs: Config[];
  queries: AsyncIterable<QueryCase> | Iterable<QueryCase>;
  onQuery?: (done: number) => void;
}

/** Runs every config on every query; returns one point per config plus exhaustive. */
export async function measureCurves(input: CurveInput): Promise<Point[]> {
  const samples = new Map<string, Sample & { family: string; label: string }>();
  const record = (family: string, label: string, r: number, docs: number, ms: number, iters: number) => {
    const key = `${family}\u0000${label}`;
    const s = samples.get(key) ?? { family, label, recall: [], docs: [], ms: [], iters: [] };
    samples.set(key, s);
    s.recall.push(r);
    s.docs.push(docs);
    s.ms.push(ms);
    s.iters.push(iters);
  };
  let done = 0;
  for await (const query of input.queries) {
    record("exhaustive", "every row", 1, input.n, query.exhaustiveMs, 1);
    for (const config of input.configs) {
      if (config.proxyAt === "query" && !query.queryVector) continue;
      const seedRows =
        config.proxyAt === undefined
          ? undefined
          : async (best: readonly RowHit[], count: number) => {
              if (config.proxyAt === "query") return input.ipIndex.search(query.queryVector!, count);
              if (config.proxyAt === "mean" || best.length === 0) return input.ipIndex.search(qnetGradient(query.qnet, input.mean), count);
              const points = best.slice(0, config.proxyAt === "top4" ? PROXY_GRADIENT_POINTS : config.proxyAt === "service" ? proxyGradientPoints(query.qnet.dims) : 1);
              const rows = points.map((hit) => input.ipIndex.search(qnetGradient(query.qnet, input.row(hit.row)), Math.ceil(count / points.length)));
              return Uint32Array.from(new Set(rows.flatMap((r) => [...r])));
            };
      const t0 = performance.now();
      let options = config.options;
      if (config.seedsAsEntryRows) {
        const seeds = input.ipIndex.search(qnetGradient(query.qnet, input.mean), config.seedsAsEntryRows);
        const entryRows = Uint32Array.from(new Set([...(input.entryRows ?? []), ...seeds]));
        options = { ...options, entryRows, entryPoints: entryRows.length + 32 };
      }
      const found = await graphSearch(query.scorer, input.graph, { ...options, k: input.k, seed: done, ...(seedRows ? { seedRows } : {}) });
      const ms = performance.now() - t0;
      record(config.family, config.label, recall(found.hits, query.truth), found.stats.docsScored, ms, found.stats.iterations);
    }
    done++;
    input.onQuery?.(done);
  }
  return [...samples.values()].map((s) => ({
    family: s.family,
    label: s.label,
    recall: mean(s.recall),
    docsFraction: mean(s.docs) / input.n,
    p50ms: percentile(s.ms, 50),
    p95ms: percentile(s.ms, 95),
    iterations: mean(s.iters),
  }));
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The table, plus the proxy default's ratios against the published walk's defaults. */
export function formatTable(points: readonly Point[], n: number): string {
  const familyWidth = Math.max(4, ...points.map((p) => p.family.length));
  const labelWidth = Math.max(7, ...points.map((p) => p.label.length));
  const lines = [`${"walk".padEnd(familyWidth)} ${"setting".padEnd(labelWidth)} | recall@10 | docs scored (% corpus) | iters | p50 ms | p95 ms`];
  for (const p of points) {
    lines.push(
      [
        `${p.family.padEnd(familyWidth)} ${p.label.padEnd(labelWidth)}`,
        p.recall.toFixed(3).padStart(9),
        `${(p.docsFraction * n).toFixed(0)} (${(100 * p.docsFraction).toFixed(2)}%)`.padStart(22),
        p.iterations.toFixed(1).padStart(5),
        p.p50ms.toFixed(0).padStart(6),
        p.p95ms.toFixed(0).padStart(6),
      ].join(" | "),
    );
  }
  const published = points.find((p) => p.family === "published" && p.label === "entryPoints 10000");
  const proxy = points.find((p) => p.family === "proxy default");
  if (published && proxy) {
    lines.push(
      `proxy default vs published defaults: recall ${proxy.recall.toFixed(3)} vs ${published.recall.toFixed(3)}, ` +
        `docs scored ×${(proxy.docsFraction / published.docsFraction).toFixed(3)}, p50 latency ×${(proxy.p50ms / published.p50ms).toFixed(2)}`,
    );
  }
  return lines.join("\n");
}

export interface Panel {
  title: string;
  points: readonly Point[];
}

const COLOURS: Record<string, string> = {
  published: "#d62728",
  "best-first": "#ff7f0e",
  "proxy (gradient at best)": "#1f77b4",
  "proxy (gradient at best 4)": "#9467bd",
  "proxy (gradient at mean)": "#17becf",
  "proxy (query embedding)": "#8c564b",
  "proxy seeds, published step": "#e377c2",
  "proxy default": "#2ca02c",
};

/**
 * Plain SVG, one panel per corpus: recall@10 (y, 0.5..1) against documents scored as % of the
 * corpus (x, log scale), one polyline per walk family, drawn from the bench's own numbers.
 */
export function curvesSvg(panels: readonly Panel[], caption: string): string {
  const W = 460;
  const H = 320;
  const pad = { l: 56, r: 16, t: 34, b: 46 };
  const cols = Math.min(2, panels.length);
  const rows = Math.ceil(panels.length / cols);
  const legendH = 24 * Object.keys(COLOURS).length;
  const width = cols * W;
  const height = rows * H + legendH + 40;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  panels.forEach((panel, i) => {
    const ox = (i % cols) * W;
    const oy = Math.floor(i / cols) * H;
    const pw = W - pad.l - pad.r;
    const ph = H - pad.t - pad.b;
    const drawn = panel.points.filter((p) => p.family !== "exhaustive");
    const xs = drawn.map((p) => 100 * p.docsFraction).filter((x) => x > 0);
    const xMin = 10 ** Math.floor(Math.log10(Math.min(...xs)));
    const xMax = 10 ** Math.ceil(Math.log10(Math.max(...xs)));
    // The recall axis starts at the worst point's tenth (at most 0.9), so close curves stay apart.
    const yMin = Math.min(0.9, Math.floor(Math.min(...drawn.map((p) => p.recall)) * 10) / 10);
    const x = (v: number) => ox + pad.l + (pw * (Math.log10(v) - Math.log10(xMin))) / (Math.log10(xMax) - Math.log10(xMin));
    const y = (v: number) => oy + pad.t + ph * (1 - (v - yMin) / (1 - yMin));
    out.push(`<text x="${ox + W / 2}" y="${oy + 20}" text-anchor="middle" font-weight="bold">${esc(panel.title)}</text>`);
    out.push(`<rect x="${ox + pad.l}" y="${oy + pad.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
    for (let d = xMin; d <= xMax * 1.0001; d *= 10) {
      out.push(`<line x1="${x(d)}" y1="${oy + pad.t}" x2="${x(d)}" y2="${oy + pad.t + ph}" stroke="#eee"/>`);
      out.push(`<text x="${x(d)}" y="${oy + pad.t + ph + 16}" text-anchor="middle">${d >= 1 ? d.toFixed(0) : d.toString()}%</text>`);
    }
    for (let r = Math.ceil(yMin * 10 - 1e-9) / 10; r <= 1.0001; r += yMin >= 0.9 ? 0.02 : 0.1) {
      out.push(`<line x1="${ox + pad.l}" y1="${y(r)}" x2="${ox + pad.l + pw}" y2="${y(r)}" stroke="#eee"/>`);
      out.push(`<text x="${ox + pad.l - 6}" y="${y(r) + 4}" text-anchor="end">${r.toFixed(yMin >= 0.9 ? 2 : 1)}</text>`);
    }
    out.push(`<text x="${ox + pad.l + pw / 2}" y="${oy + H - 10}" text-anchor="middle">documents scored (% of corpus, log scale)</text>`);
    out.push(`<text transform="translate(${ox + 14},${oy + pad.t + ph / 2}) rotate(-90)" text-anchor="middle">recall@10</text>`);
    const families = [...new Set(drawn.map((p) => p.family))];
    for (const family of families) {
      const colour = COLOURS[family] ?? "#555";
      const pts = drawn.filter((p) => p.family === family).sort((a, b) => a.docsFraction - b.docsFraction);
      out.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.map((p) => `${x(100 * p.docsFraction).toFixed(1)},${y(p.recall).toFixed(1)}`).join(" ")}"/>`);
      const radius = family === "proxy default" ? 6 : 3.5;
      for (const p of pts) out.push(`<circle cx="${x(100 * p.docsFraction).toFixed(1)}" cy="${y(p.recall).toFixed(1)}" r="${radius}" fill="${colour}"><title>${esc(`${family} ${p.label}: recall ${p.recall.toFixed(3)}, ${(100 * p.docsFraction).toFixed(2)}% scored, p50 ${p.p50ms.toFixed(0)} ms`)}</title></circle>`);
    }
  });
  const ly = rows * H + 10;
  Object.entries(COLOURS).forEach(([family, colour], i) => {
    out.push(`<line x1="20" y1="${ly + 24 * i + 8}" x2="50" y2="${ly + 24 * i + 8}" stroke="${colour}" stroke-width="3"/>`);
    out.push(`<text x="58" y="${ly + 24 * i + 12}">${esc(family)}</text>`);
  });
  out.push(`<text x="20" y="${height - 12}" fill="#555">${esc(caption)}</text>`);
  out.push("</svg>");
  return out.join("\n");
}

export async function writeSvg(path: string, panels: readonly Panel[], caption: string): Promise<void> {
  await writeFile(path, `${curvesSvg(panels, caption)}\n`);
}
