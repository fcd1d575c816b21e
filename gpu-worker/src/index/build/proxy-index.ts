/**
 * The shard's proxy index, built with the shard (builds and compactions): a usearch HNSW graph
 * over the shard's embeddings with the cosine metric, from which search takes the rows with the
 * best inner product with a query's proxy vector (its q-net's gradient) as entry rows: the reader
 * reranks a few times the rows wanted by their exact inner product (why cosine:
 * shared/index/proxy-index-section.ts). Stored as the shard's `proxyIndex` section (layout in
 * shared/FORMATS.md); the reader is ../proxy-index-reader.ts.
 *
 * usearch stores the vectors as f16. For a float16 shard those are exactly the stored rows; for a
 * float32 one they are the rows rounded to half, which is plenty to choose candidates that are
 * then reranked exactly. Rows are handed to usearch already rounded to f16, so its copy is bit for
 * bit what the reader rebuilds. usearch only saves to a path, so the index goes through a temp
 * file, and its vector block is cut out: the reader takes the vectors from the embeddings.
 *
 * Shards below `minRows` get no section: the reader brute-forces them, which at 4,096 × 768 costs
 * a few milliseconds and saves the build the work.
 */
import { randomBytes } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { Index, MetricKind, ScalarKind } from "usearch";
import { BUILD_DEFAULTS } from "../../../../shared/api/worker-api.ts";
import { IndexFormatError } from "../../../../shared/index/errors.ts";
import { halfToFloat32Array, float32ArrayToHalf } from "../../../../shared/qnet/half.ts";
import {
  PROXY_INDEX_HEADER_BYTES,
  PROXY_INDEX_LAYOUT_VERSION,
  PROXY_INDEX_MAGIC,
  PROXY_MAX_CONNECTIVITY,
  parseProxyIndexSection,
  USEARCH_SCALAR_F16,
} from "../../../../shared/index/proxy-index-section.ts";

export interface ProxyIndexBuildOptions {
  /** Fewer rows than this: no index (undefined). BUILD_DEFAULTS.proxyIndexMinRows when omitted. */
  minRows?: number;
  /** HNSW M; BUILD_DEFAULTS.proxyConnectivity when omitted. */
  connectivity?: number;
  /** ef during construction; BUILD_DEFAULTS.proxyExpansionAdd when omitted. */
  expansionAdd?: number;
  /** Native threads; every core when omitted. */
  threads?: number;
  /** Called with the fraction done, in [0, 1], after each slice of rows added. */
  onProgress?: (fraction: number) => void;
  /** Checked between slices. */
  signal?: AbortSignal;
  /** Where the temp file goes; the OS temp folder when omitted. */
  tempDir?: string;
}

const SLICE_TARGET_MS = 100;
/**
 * The proxy index's share of a shard's "graph" progress (the kNN graph has the rest): about its
 * share of the time at 100k × 768 rows (see bench/proxy-index.bench.ts).
 */
export const PROXY_GRAPH_PHASE_SHARE = 0.25;

/**
 * Builds the proxyIndex section for `embeddings` (n × dim, row-major, the values the shard will
 * store), or returns undefined when the shard has fewer than minRows rows.
 */
export async function buildProxyIndex(embeddings: Float32Array, dim: number, options: ProxyIndexBuildOptions = {}): Promise<Uint8Array | undefined> {
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`proxy index: dim must be a positive integer, got ${dim}`);
  if (embeddings.length % dim !== 0) throw new RangeError(`proxy index: ${embeddings.length} values is not a whole number of ${dim}-wide rows`);
  const n = embeddings.length / dim;
  const minRows = options.minRows ?? BUILD_DEFAULTS.proxyIndexMinRows;
  const connectivity = options.connectivity ?? BUILD_DEFAULTS.proxyConnectivity;
  const expansionAdd = options.expansionAdd ?? BUILD_DEFAULTS.proxyExpansionAdd;
  if (!Number.isInteger(minRows) || minRows < 1) throw new RangeError(`proxy index: minRows must be a positive integer, got ${minRows}`);
  if (!Number.isInteger(connectivity) || connectivity < 2 || connectivity > PROXY_MAX_CONNECTIVITY) {
    throw new RangeError(`proxy index: connectivity must be an integer in 2..${PROXY_MAX_CONNECTIVITY}, got ${connectivity}`);
  }
  if (!Number.isInteger(expansionAdd) || expansionAdd < 1) throw new RangeError(`proxy index: expansionAdd must be a positive integer, got ${expansionAdd}`);
  const progress = options.onProgress ?? (() => {});
  if (n < minRows || n === 0) {
    progress(1);
    return undefined;
  }
  if (n > 0xffffffff) throw new RangeError(`proxy index: ${n} rows do not fit 32-bit row ids`);
  const threads = options.threads ?? availableParallelism();

  // Each row as f16 values: what a float16 shard stores, a float32 one rounded.
  const roundedRows = (start: number, end: number): Float32Array =>
    halfToFloat32Array(float32ArrayToHalf(embeddings.subarray(start * dim, end * dim)));

  const index = new Index({
    dimensions: dim,
    metric: MetricKind.Cos,
    quantization: ScalarKind.F16,
    connectivity,
    expansion_add: expansionAdd,
    expansion_search: expansionAdd,
    multi: false,
  });
  const keys = new BigUint64Array(n);
  for (let r = 0; r < n; r++) keys[r] = BigInt(r);
  // Slices sized to about SLICE_TARGET_MS each, yielding between them, as the kNN graph builder does.
  let size = 256;
  for (let start = 0; start < n; ) {
    options.signal?.throwIfAborted();
    const end = Math.min(n, start + size);
    const t0 = performance.now();
    index.add(keys.subarray(start, end), roundedRows(start, end), threads);
    const ms = Math.max(performance.now() - t0, 0.1);
    size = Math.max(64, Math.min(65_536, Math.round((size * SLICE_TARGET_MS) / ms)));
    start = end;
    progress(end / n);
    await yieldToEventLoop();
  }

  const path = join(options.tempDir ?? tmpdir(), `hypx-proxy-build-${process.pid}-${randomBytes(6).toString("hex")}.usearch`);
  let saved: Uint8Array;
  try {
    index.save(path);
    saved = await readFile(path);
  } finally {
    await rm(path, { force: true });
  }
  return sectionFromUsearchFile(saved, n, dim);
}

/**
 * usearch's file is [u32 rows][u32 bytes per vector][the vectors][dense head][graph]: drop the
 * first three, put our header in front, and check the result as a reader would.
 */
export function sectionFromUsearchFile(file: Uint8Array, n: number, dim: number): Uint8Array {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const bytesPerVector = 2 * dim;
  if (file.length < 8 || view.getUint32(0, true) !== n || view.getUint32(4, true) !== bytesPerVector) {
    throw new IndexFormatError(`proxy index: usearch saved an unexpected matrix header (expected ${n} rows of ${bytesPerVector} bytes)`);
  }
  const graph = file.subarray(8 + n * bytesPerVector);
  const section = new Uint8Array(PROXY_INDEX_HEADER_BYTES + graph.length);
  section.set(new TextEncoder().encode(PROXY_INDEX_MAGIC), 0);
  const header = new DataView(section.buffer);
  header.setUint32(8, PROXY_INDEX_LAYOUT_VERSION, true);
  header.setUint32(12, n, true);
  header.setUint32(16, dim, true);
  section[20] = USEARCH_SCALAR_F16;
  section.set(graph, PROXY_INDEX_HEADER_BYTES);
  const layout = parseProxyIndexSection(section, n, dim);
  if (typeof layout === "string") throw new IndexFormatError(`proxy index: usearch wrote a graph this reader would refuse: ${layout}`);
  return section;
}
