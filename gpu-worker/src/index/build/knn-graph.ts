/**
 * The k-nearest-neighbour graph over a shard's document embeddings (L2 distance) that graph search
 * walks. Small shards get the exact graph by blocked brute force in TypeScript; large ones use
 * usearch's HNSW: index every row, then query every row for degree + 1 neighbours and drop itself.
 *
 * Then, by default, a fifth of each row's slots go to reverse links (addReverseLinks): the rows
 * whose own nearest neighbours include it. A pure kNN graph has rows few others point at (tails of
 * a cluster, where the best q-net scores tend to be), and graph search reaches a row only along
 * edges into it; on 1M clustered 768-d documents reverse links raised recall@10 of the published
 * search from 0.905 to 0.950 at the same degree and cost (bench/graph-search.bench.ts).
 *
 * Both builders work in slices and yield to the event loop between them, so a server building an
 * index stays responsive; usearch's calls are synchronous but multithreaded, and their slice size
 * adapts to keep each call near SLICE_TARGET_MS.
 */
import { availableParallelism } from "node:os";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { type BatchMatches, Index, type Matches, MetricKind, ScalarKind } from "usearch";
import { BUILD_DEFAULTS, LIMITS } from "../../../../shared/api/worker-api.ts";
import { sampleUnmarked, seededRandom } from "../../search/random.ts";
import { TopK } from "../../search/topk.ts";

/** Below this many rows the exact graph is cheap enough (~n² · dim / 2 multiply-adds). */
export const DEFAULT_EXACT_BELOW = 5000;

export interface HnswOptions {
  /** HNSW M: links per node per layer. */
  connectivity?: number;
  /** ef during construction. */
  expansionAdd?: number;
  /** ef when querying each row's neighbours; at least degree + 1 is used. */
  expansionSearch?: number;
  /** Native threads; defaults to every core. */
  threads?: number;
  /**
   * How usearch stores the vectors it compares. "f16" halves the memory the build walks (1M × 768
   * rows: 1.5 GB instead of 3 GB) and loses nothing for an fp16 index, whose rows are already fp16.
   */
  quantization?: "f32" | "f16";
}

export interface KnnGraphOptions {
  degree?: number;
  /** Shards with fewer rows than this get the exact graph. */
  exactBelow?: number;
  /** Called with the fraction done, in [0, 1], after each slice. */
  onProgress?: (fraction: number) => void;
  /** Share of each row's degree for reverse links, in [0, LIMITS.reverseShareMax]; see addReverseLinks. */
  reverseShare?: number;
  /** Reserved for randomised builders; the current ones are deterministic given the data. */
  seed?: number;
  hnsw?: HnswOptions;
}

export type KnnGraphBuilder = "exact" | "usearch-hnsw";

export interface KnnGraph {
  /** n + 1 entries: row r's neighbours are neighbors[offsets[r] .. offsets[r+1]). */
  offsets: Uint32Array;
  /** Local row ids, self excluded, nearest first. */
  neighbors: Uint32Array;
  /** The degree asked for, capped at n - 1; a row can have fewer (approximate builder, duplicates). */
  degree: number;
  builder: KnnGraphBuilder;
  /** Reverse-link slots per row (0: a pure kNN graph). */
  reverseSlots: number;
}

const SLICE_TARGET_MS = 100;
/** About 50 ms of addReverseLinks at degree 100. */
const YIELD_ROWS = 16_384;

export async function buildKnnGraph(embeddings: Float32Array, dim: number, options: KnnGraphOptions = {}): Promise<KnnGraph> {
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`knn graph: dim must be a positive integer, got ${dim}`);
  if (embeddings.length % dim !== 0) {
    throw new RangeError(`knn graph: ${embeddings.length} values is not a whole number of ${dim}-wide rows`);
  }
  const n = embeddings.length / dim;
  if (n > 0xffffffff) throw new RangeError(`knn graph: ${n} rows do not fit 32-bit row ids`);
  const requested = options.degree ?? BUILD_DEFAULTS.degree;
  if (!Number.isInteger(requested) || requested < 1) throw new RangeError(`knn graph: degree must be a positive integer, got ${requested}`);
  const exactBelow = options.exactBelow ?? DEFAULT_EXACT_BELOW;
  if (!Number.isInteger(exactBelow) || exactBelow < 0) {
    throw new RangeError(`knn graph: exactBelow must be a non-negative integer, got ${exactBelow}`);
  }
  const reverseShare = options.reverseShare ?? BUILD_DEFAULTS.reverseShare;
  if (!(reverseShare >= 0 && reverseShare <= LIMITS.reverseShareMax)) {
    throw new RangeError(`knn graph: reverseShare must be in [0, ${LIMITS.reverseShareMax}], got ${reverseShare}`);
  }
  const degree = Math.max(0, Math.min(requested, n - 1));
  const progress = options.onProgress ?? (() => {});
  if (degree === 0) {
    progress(1);
    return { offsets: new Uint32Array(n + 1), neighbors: new Uint32Array(0), degree, builder: "exact", reverseSlots: 0 };
  }
  const knn = n < exactBelow ? await exactKnnGraph(embeddings, dim, n, degree, progress) : await hnswKnnGraph(embeddings, dim, n, degree, options.hnsw ?? {}, progress);
  return addReverseLinks(knn, reverseShare);
}

// ---------------------------------------------------------------------------------------------
// Reverse links
// ---------------------------------------------------------------------------------------------

/**
 * Rebuilds a pure kNN graph (each row's neighbours nearest first) so that each row keeps its
 * nearest `degree − s` neighbours and gets up to s = ⌊share · degree⌋ reverse links: rows u that
 * have it among their kept neighbours, those that rank it nearest first (ties: lower u). Slots no
 * reverse link takes go back to the row's next-nearest neighbours, so no row loses out-degree and
 * none exceeds `degree`. Deterministic, and O(n · degree), though bound by random memory writes:
 * 0.8 s for a 150k-row shard (256 MiB at 768-d fp16), 15 s for 1M rows on a 2-core EPYC, so the
 * two long loops yield to the event loop every YIELD_ROWS rows, like the graph builders.
 */
export async function addReverseLinks(graph: KnnGraph, share: number): Promise<KnnGraph> {
  const { offsets, neighbors, degree } = graph;
  const n = offsets.length - 1;
  const slots = Math.floor(share * degree);
  if (slots === 0 || graph.reverseSlots > 0) return graph;
  const keep = degree - slots;
  const kept = new Uint16Array(n); // how many of each row's neighbours it keeps
  for (let u = 0; u < n; u++) kept[u] = Math.min(keep, offsets[u + 1] - offsets[u]);

  // Bucket the kept edges u → v by v (in u order), with u's rank for v.
  const starts = new Uint32Array(n + 1);
  for (let u = 0; u < n; u++) for (let e = offsets[u], end = e + kept[u]; e < end; e++) starts[neighbors[e] + 1]++;
  for (let v = 0; v < n; v++) starts[v + 1] += starts[v];
  const fill = starts.slice(0, n);
  const reverse = new Uint32Array(starts[n]);
  const rank = new Uint16Array(starts[n]);
  for (let u = 0; u < n; u++) {
    if (u % YIELD_ROWS === YIELD_ROWS - 1) await yieldToEventLoop();
    for (let j = 0; j < kept[u]; j++) {
      const at = fill[neighbors[offsets[u] + j]]++;
      reverse[at] = u;
      rank[at] = j;
    }
  }
  // Per row, its bucket counting-sorted by rank (stable, so ties stay in u order): the order in
  // which reverse links are preferred.
  const byRank = new Uint32Array(keep + 1);
  let preferred = new Uint32Array(64);
  const sortBucket = (r: number): number => {
    const from = starts[r];
    const size = starts[r + 1] - from;
    if (preferred.length < size) preferred = new Uint32Array(size * 2);
    byRank.fill(0);
    for (let i = from; i < from + size; i++) byRank[rank[i] + 1]++;
    for (let j = 0; j < keep; j++) byRank[j + 1] += byRank[j];
    for (let i = from; i < from + size; i++) preferred[byRank[rank[i]]++] = reverse[i];
    return size;
  };

  const outOffsets = new Uint32Array(n + 1);
  const out = new Uint32Array(neighbors.length + n * slots);
  const listed = new Int32Array(n).fill(-1); // listed[x] === r: x is already in row r's list
  let e = 0;
  for (let r = 0; r < n; r++) {
    if (r % YIELD_ROWS === YIELD_ROWS - 1) await yieldToEventLoop();
    const rowEnd = e + degree;
    for (let i = offsets[r], end = i + kept[r]; i < end; i++) {
      listed[neighbors[i]] = r;
      out[e++] = neighbors[i];
    }
    for (let i = 0, size = sortBucket(r), taken = 0; i < size && taken < slots; i++) {
      const u = preferred[i];
      if (listed[u] === r) continue;
      listed[u] = r;
      out[e++] = u;
      taken++;
    }
    for (let i = offsets[r] + kept[r]; i < offsets[r + 1] && e < rowEnd; i++) {
      const v = neighbors[i];
      if (listed[v] === r) continue;
      listed[v] = r;
      out[e++] = v;
    }
    outOffsets[r + 1] = e;
  }
  return { offsets: outOffsets, neighbors: out.slice(0, e), degree, builder: graph.builder, reverseSlots: slots };
}

// ---------------------------------------------------------------------------------------------
// Exact builder
// ---------------------------------------------------------------------------------------------

/** Rows per register block (each pass over a column row computes 4 × 2 dot products). */
const EXACT_BLOCK = 4;

/**
 * Exact kNN by brute force over each unordered pair once: ‖x‖² + ‖y‖² − 2x·y in float64, offered to
 * both rows' bounded heaps (score = −distance, so ties go to the lower row id).
 */
async function exactKnnGraph(
  embeddings: Float32Array,
  dim: number,
  n: number,
  degree: number,
  progress: (fraction: number) => void,
): Promise<KnnGraph> {
  const norms = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let c = r * dim, end = c + dim; c < end; c++) s += embeddings[c] * embeddings[c];
    norms[r] = s;
  }
  const heaps = Array.from({ length: n }, () => new TopK(degree));
  const offer = (a: number, b: number, dot: number) => {
    const d = norms[a] + norms[b] - 2 * dot;
    heaps[a].push(b, -d);
    heaps[b].push(a, -d);
  };
  const totalPairs = (n * (n - 1)) / 2;
  let pairsDone = 0;
  let sliceStart = performance.now();
  for (let i = 0; i < n; i += EXACT_BLOCK) {
    const rows = Math.min(EXACT_BLOCK, n - i);
    // Pairs inside the block: only j > i + r.
    for (let r = 0; r < rows; r++) for (let j = i + r + 1; j < i + rows; j++) offer(i + r, j, dot(embeddings, dim, i + r, j));
    let j = i + rows;
    if (rows === EXACT_BLOCK) {
      for (; j + 1 < n; j += 2) {
        const out = dotBlock4x2(embeddings, dim, i, j);
        for (let r = 0; r < EXACT_BLOCK; r++) {
          offer(i + r, j, out[r]);
          offer(i + r, j + 1, out[EXACT_BLOCK + r]);
        }
      }
    }
    for (; j < n; j++) for (let r = 0; r < rows; r++) offer(i + r, j, dot(embeddings, dim, i + r, j));
    pairsDone += rows * (n - i - rows) + (rows * (rows - 1)) / 2;
    if (performance.now() - sliceStart > SLICE_TARGET_MS) {
      progress(pairsDone / totalPairs);
      await yieldToEventLoop();
      sliceStart = performance.now();
    }
  }
  const offsets = new Uint32Array(n + 1);
  const neighbors = new Uint32Array(n * degree);
  let e = 0;
  for (let r = 0; r < n; r++) {
    for (const hit of heaps[r].sorted()) neighbors[e++] = hit.row;
    offsets[r + 1] = e;
  }
  progress(1);
  return { offsets, neighbors, degree, builder: "exact", reverseSlots: 0 };
}

function dot(x: Float32Array, dim: number, a: number, b: number): number {
  let s = 0;
  const ao = a * dim;
  const bo = b * dim;
  for (let k = 0; k < dim; k++) s += x[ao + k] * x[bo + k];
  return s;
}

const block4x2 = new Float64Array(2 * EXACT_BLOCK);

/** Dot products of rows i..i+3 with rows j and j+1 (out[r] with j, out[4 + r] with j + 1). */
function dotBlock4x2(x: Float32Array, dim: number, i: number, j: number): Float64Array {
  const x0 = i * dim;
  const x1 = x0 + dim;
  const x2 = x1 + dim;
  const x3 = x2 + dim;
  const ya = j * dim;
  const yb = ya + dim;
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
  for (let k = 0; k < dim; k++) {
    const va = x[ya + k];
    const vb = x[yb + k];
    const v0 = x[x0 + k];
    const v1 = x[x1 + k];
    const v2 = x[x2 + k];
    const v3 = x[x3 + k];
    a0 += v0 * va;
    a1 += v1 * va;
    a2 += v2 * va;
    a3 += v3 * va;
    b0 += v0 * vb;
    b1 += v1 * vb;
    b2 += v2 * vb;
    b3 += v3 * vb;
  }
  const out = block4x2;
  out[0] = a0;
  out[1] = a1;
  out[2] = a2;
  out[3] = a3;
  out[4] = b0;
  out[5] = b1;
  out[6] = b2;
  out[7] = b3;
  return out;
}

// ---------------------------------------------------------------------------------------------
// HNSW builder (usearch)
// ---------------------------------------------------------------------------------------------

/** Adding rows is most of the work; the fractions only shape the progress bar. */
const ADD_SHARE = 0.6;

async function hnswKnnGraph(
  embeddings: Float32Array,
  dim: number,
  n: number,
  degree: number,
  hnsw: HnswOptions,
  progress: (fraction: number) => void,
): Promise<KnnGraph> {
  const threads = hnsw.threads ?? availableParallelism();
  const want = degree + 1; // every row finds itself (unless an identical row shadows it)
  const index = new Index({
    dimensions: dim,
    metric: MetricKind.L2sq,
    quantization: hnsw.quantization === "f16" ? ScalarKind.F16 : ScalarKind.F32,
    connectivity: hnsw.connectivity ?? 16,
    expansion_add: hnsw.expansionAdd ?? 64,
    // Measured on clustered 32-d data: ef = 1.25 · (degree + 1) gives ~99.5% neighbour recall.
    expansion_search: Math.max(want, hnsw.expansionSearch ?? Math.max(64, Math.ceil(1.25 * want))),
    multi: false,
  });

  const keys = new BigUint64Array(n);
  for (let r = 0; r < n; r++) keys[r] = BigInt(r);
  await inAdaptiveSlices(n, (start, end) => {
    index.add(keys.subarray(start, end), embeddings.subarray(start * dim, end * dim), threads);
    progress((ADD_SHARE * end) / n);
  });

  const offsets = new Uint32Array(n + 1);
  const neighbors = new Uint32Array(n * degree);
  let e = 0;
  await inAdaptiveSlices(n, (start, end) => {
    // usearch's typings say Matches for a flat array, but several queries come back as BatchMatches;
    // a single query comes back as Matches, already cut to its count.
    const found = index.search(embeddings.subarray(start * dim, end * dim), want, threads) as Matches | BatchMatches;
    const counts = "counts" in found ? found.counts : BigUint64Array.of(BigInt(found.keys.length));
    for (let q = 0; q < end - start; q++) {
      const row = start + q;
      const base = q * want;
      const count = Number(counts[q]);
      let taken = 0;
      for (let m = 0; m < count && taken < degree; m++) {
        const nb = Number(found.keys[base + m]);
        if (nb === row) continue;
        neighbors[e++] = nb;
        taken++;
      }
      offsets[row + 1] = e;
    }
    progress(ADD_SHARE + ((1 - ADD_SHARE) * end) / n);
  });
  progress(1);
  return { offsets, neighbors: e === neighbors.length ? neighbors : neighbors.slice(0, e), degree, builder: "usearch-hnsw", reverseSlots: 0 };
}

/**
 * Runs work(start, end) over [0, n) in slices sized so each synchronous call takes about
 * SLICE_TARGET_MS, yielding to the event loop between slices.
 */
async function inAdaptiveSlices(n: number, work: (start: number, end: number) => void): Promise<void> {
  let size = 256;
  for (let start = 0; start < n; ) {
    const end = Math.min(n, start + size);
    const t0 = performance.now();
    work(start, end);
    const ms = Math.max(performance.now() - t0, 0.1);
    size = Math.max(64, Math.min(65_536, Math.round((size * SLICE_TARGET_MS) / ms)));
    start = end;
    await yieldToEventLoop();
  }
}

// ---------------------------------------------------------------------------------------------
// Connectivity
// ---------------------------------------------------------------------------------------------

/**
 * The fraction of rows reachable by BFS along neighbour edges from `entryCount` random rows
 * (1 for an empty graph). Graph search reaches nothing beyond this set, so a low value means the
 * graph is too disconnected for search and deserves a build warning.
 */
export function reachableFraction(graph: Pick<KnnGraph, "offsets" | "neighbors">, entryCount: number, seed: number): number {
  const n = graph.offsets.length - 1;
  if (!Number.isInteger(entryCount) || entryCount < 1) {
    throw new RangeError(`reachableFraction: entryCount must be a positive integer, got ${entryCount}`);
  }
  if (n <= 0) return 1;
  const seen = new Uint8Array(n);
  const queue: number[] = [];
  sampleUnmarked(seededRandom(seed), n, seen, 0, Math.min(entryCount, n), queue);
  const { offsets, neighbors } = graph;
  for (let head = 0; head < queue.length; head++) {
    const row = queue[head];
    for (let e = offsets[row], end = offsets[row + 1]; e < end; e++) {
      const nb = neighbors[e];
      if (nb >= n) throw new RangeError(`graph: row ${row} has neighbour ${nb}, but there are ${n} rows`);
      if (seen[nb] === 0) {
        seen[nb] = 1;
        queue.push(nb);
      }
    }
  }
  return queue.length / n;
}
