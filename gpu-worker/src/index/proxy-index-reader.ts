/**
 * A shard's proxy index, opened: the shard's rows with the best inner product with a vector (a
 * query's proxy: its q-net's gradient), best first, which graph search scores as entry rows.
 *
 * A shard with a proxyIndex section (build/proxy-index.ts; layout in shared/FORMATS.md) is
 * searched with usearch's HNSW (cosine) for a pool of a few times the rows wanted, which are then
 * reranked by their exact inner product with the shard's own rows (why: shared/index/
 * proxy-index-section.ts). usearch loads only from a path, so opening writes its file back
 * together, [u32 rows][u32 bytes per vector][the vectors in slot order: i8 with one scale per row
 * (PROXY_VECTORS), or f16][the section after our header, its scalar kind set to match], to a temp
 * file, loads it into memory and deletes the file at once. A shard without
 * the section (small shards, and shards built before it existed) is brute-forced over its
 * embeddings: exact, and for the small shards no slower than HNSW.
 *
 * Opened once per decoded shard (memoised on the DecodedShard) and freed with it: the shard cache
 * calls closeProxyIndex when the last handle on a shard is released. Its memory (usearch's copy of
 * the vectors and the graph) counts in the version's memory (LoadedIndex.memory, proxyIndexBytes).
 * usearch's memory is native and invisible to V8's collector, so close() frees it explicitly, by
 * loading an empty index in its place.
 */
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { open as openFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Index, type Matches, MetricKind, ScalarKind } from "usearch";
import { IndexFormatError } from "../../../shared/index/errors.ts";
import type { DecodedShard } from "../../../shared/index/format.ts";
import {
  PROXY_INDEX_HEADER_BYTES,
  type ProxyIndexLayout,
  parseProxyIndexSection,
  USEARCH_DENSE_HEAD_BYTES,
  USEARCH_SCALAR_F16,
} from "../../../shared/index/proxy-index-section.ts";
import { float32ArrayToHalf, halfToFloat32Array } from "../../../shared/qnet/half.ts";
import { TopK } from "../search/topk.ts";

export interface ProxyIndex {
  /**
   * The shard's rows with the highest inner product with `vector` (dim values), best first: at
   * most `count`, fewer only when the shard has fewer rows. Exact when `kind` is "exact"; when
   * "hnsw", the exact inner-product order of a candidate pool from the graph (high but not perfect
   * recall of the true top). Deleted rows are not filtered out.
   */
  search(vector: Float32Array, count: number): Uint32Array;
  /** "hnsw": the shard's proxyIndex section; "exact": brute force (the shard has no section). */
  readonly kind: "hnsw" | "exact";
  /** Memory this holds beyond the shard's own bytes (usearch's vectors and graph; 0 for "exact"). */
  readonly bytes: number;
  /** Frees the index (idempotent); a later prepareProxyIndex on the shard opens it again. */
  close(): void;
}

/** ef when searching; usearch uses max(ef, rows asked for), so this is a floor for small pools. */
export const PROXY_EXPANSION_SEARCH = 256;
/** The candidate pool usearch is asked for: this many times `count`, at least PROXY_MIN_POOL, then reranked exactly. */
export const PROXY_OVERFETCH = 2;
export const PROXY_MIN_POOL = 256;
/** Rows written per chunk when putting usearch's file together (bounds the extra memory). */
const WRITE_CHUNK_BYTES = 4 << 20;

/**
 * How the reader holds usearch's copy of the vectors: "i8" (one scale per row) by default. On
 * 100k × 768 clustered rows it halved that memory (73 MiB against 146) at the same recall and
 * latency (bench/reports/proxy-index.txt), the rerank being exact either way.
 */
export type ProxyVectors = "i8" | "f16";
export const PROXY_VECTORS: ProxyVectors = "i8";
/** usearch scalar_kind_t i8. */
const USEARCH_SCALAR_I8 = 23;

export interface OpenProxyIndexOptions {
  /** Applies when this call opens the index (not when it is already open); PROXY_VECTORS when omitted. */
  vectors?: ProxyVectors;
}

const opened = new WeakMap<DecodedShard, ProxyIndex>();
const preparing = new WeakMap<DecodedShard, Promise<ProxyIndex>>();

/**
 * The shard's proxy index, opened on first use and kept until closeProxyIndex. The temp-file
 * writes run off the event loop (usearch's load itself is synchronous), so the registry makes a
 * shard's index ready when the shard opens rather than on its first query. Concurrent calls share
 * one open. Rejects with IndexFormatError for a section usearch refuses.
 */
export function prepareProxyIndex(shard: DecodedShard, options: OpenProxyIndexOptions = {}): Promise<ProxyIndex> {
  const existing = opened.get(shard);
  if (existing) return Promise.resolve(existing);
  let pending = preparing.get(shard);
  if (!pending) {
    pending = (async () => {
      const layout = layoutOf(shard);
      const proxy = layout ? await loadHnsw(shard, layout, options.vectors ?? PROXY_VECTORS) : exactProxy(shard);
      opened.set(shard, proxy);
      return proxy;
    })().finally(() => preparing.delete(shard));
    preparing.set(shard, pending);
  }
  return pending;
}

/** Bytes the shard's opened proxy index holds (0 when none is open): counted in its version's memory. */
export function proxyIndexBytes(shard: DecodedShard): number {
  return opened.get(shard)?.bytes ?? 0;
}

/** Frees the shard's proxy index, if one is open (the shard is being dropped). */
export function closeProxyIndex(shard: DecodedShard): void {
  opened.get(shard)?.close();
}

function layoutOf(shard: DecodedShard): ProxyIndexLayout | undefined {
  if (shard.proxyIndex.length === 0) return undefined;
  // decodeShard checked the section already; this also gives the slot → row map, and guards
  // DecodedShard values made some other way.
  const layout = parseProxyIndexSection(shard.proxyIndex, shard.docCount, shard.dim);
  if (typeof layout === "string") throw new IndexFormatError(`shard: ${layout}`);
  return layout;
}

function squaredNormOf(v: Float32Array): number {
  let s = 0;
  for (let k = 0; k < v.length; k++) s += v[k]! * v[k]!;
  return s;
}

function checkQuery(vector: Float32Array, count: number, dim: number): void {
  if (!(vector instanceof Float32Array) || vector.length !== dim) {
    throw new RangeError(`proxy index: the vector must be a Float32Array of ${dim} values, got ${vector instanceof Float32Array ? vector.length : typeof vector}`);
  }
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`proxy index: count must be a positive integer, got ${count}`);
  for (let k = 0; k < dim; k++) if (!Number.isFinite(vector[k])) throw new RangeError(`proxy index: vector[${k}] is ${vector[k]}, not a finite number`);
}

// ─── HNSW (the section) ──────────────────────────────────────────────────────────────────────

function tempPath(): string {
  return join(tmpdir(), `hypx-proxy-${process.pid}-${randomBytes(6).toString("hex")}.usearch`);
}

/** usearch's file, in chunks: the matrix header and the vectors in slot order, then the section's graph. */
function* usearchFileChunks(shard: DecodedShard, layout: ProxyIndexLayout, vectors: ProxyVectors): Generator<Uint8Array> {
  const { dim } = shard;
  const { rows, slotRows } = layout;
  const bytesPerValue = vectors === "i8" ? 1 : 2;
  const header = new Uint8Array(8);
  const view = new DataView(header.buffer);
  view.setUint32(0, rows, true);
  view.setUint32(4, bytesPerValue * dim, true);
  yield header;
  const rowsPerChunk = Math.max(1, Math.floor(WRITE_CHUNK_BYTES / (2 * dim)));
  const halves = new Uint16Array(rowsPerChunk * dim);
  const bytes = new Int8Array(vectors === "i8" ? rowsPerChunk * dim : 0);
  const values = new Float32Array(dim);
  for (let start = 0; start < rows; start += rowsPerChunk) {
    const end = Math.min(rows, start + rowsPerChunk);
    for (let s = start; s < end; s++) {
      const from = slotRows[s]! * dim;
      const to = halves.subarray((s - start) * dim, (s - start + 1) * dim);
      // The builder's values exactly (build/proxy-index.ts): the stored halves, or f32 rounded.
      if (shard.embeddings instanceof Uint16Array) to.set(shard.embeddings.subarray(from, from + dim));
      else float32ArrayToHalf(shard.embeddings.subarray(from, from + dim), to);
      if (vectors === "i8") {
        // One scale per row, its largest |value| → 127: cosine ignores a row's scale, so this
        // keeps the most precision int8 has.
        halfToFloat32Array(to, values);
        let maxAbs = 0;
        for (let k = 0; k < dim; k++) maxAbs = Math.max(maxAbs, Math.abs(values[k]!));
        const scale = maxAbs > 0 ? 127 / maxAbs : 0;
        const out = bytes.subarray((s - start) * dim, (s - start + 1) * dim);
        for (let k = 0; k < dim; k++) out[k] = Math.round(values[k]! * scale);
      }
    }
    const chunk = vectors === "i8" ? bytes : halves;
    yield new Uint8Array(chunk.buffer, 0, (end - start) * dim * bytesPerValue);
  }
  const graph = shard.proxyIndex.subarray(PROXY_INDEX_HEADER_BYTES);
  // The dense head names the scalar kind of the vectors just written (its byte 14).
  const head = graph.slice(0, USEARCH_DENSE_HEAD_BYTES);
  head[14] = vectors === "i8" ? USEARCH_SCALAR_I8 : USEARCH_SCALAR_F16;
  yield head;
  yield graph.subarray(USEARCH_DENSE_HEAD_BYTES);
}

async function writeChunks(path: string, chunks: Iterable<Uint8Array>): Promise<void> {
  const file = await openFile(path, "wx", 0o600);
  try {
    // Each chunk is written before the generator refills its buffer.
    for (const chunk of chunks) for (let at = 0; at < chunk.length; ) at += (await file.write(chunk, at)).bytesWritten;
  } finally {
    await file.close();
  }
}

function newIndex(dim: number, connectivity: number, vectors: ProxyVectors = "f16"): Index {
  return new Index({
    dimensions: dim,
    metric: MetricKind.Cos,
    quantization: vectors === "i8" ? ScalarKind.I8 : ScalarKind.F16,
    connectivity,
    expansion_add: PROXY_EXPANSION_SEARCH,
    expansion_search: PROXY_EXPANSION_SEARCH,
    multi: false,
  });
}

async function loadHnsw(shard: DecodedShard, layout: ProxyIndexLayout, vectors: ProxyVectors): Promise<ProxyIndex> {
  const path = tempPath();
  try {
    await writeChunks(path, usearchFileChunks(shard, layout, vectors));
    return hnswProxy(shard, layout, loadFrom(path, shard, layout, vectors), vectors);
  } finally {
    await rm(path, { force: true });
  }
}

function loadFrom(path: string, shard: DecodedShard, layout: ProxyIndexLayout, vectors: ProxyVectors): Index {
  const index = newIndex(shard.dim, layout.connectivity, vectors);
  try {
    index.load(path);
  } catch (e) {
    throw new IndexFormatError(`shard: usearch refused the proxyIndex section: ${(e as Error).message}`);
  }
  if (index.size() !== layout.rows || index.dimensions() !== shard.dim) {
    freeNative(index);
    throw new IndexFormatError(`shard: the proxyIndex section loaded as ${index.size()} rows of ${index.dimensions()}, expected ${layout.rows} of ${shard.dim}`);
  }
  return index;
}

function hnswProxy(shard: DecodedShard, layout: ProxyIndexLayout, index: Index, vectors: ProxyVectors): ProxyIndex {
  const { dim } = shard;
  // usearch's copy of the vectors, its nodes (the section less its headers and level list), and
  // per reserved slot (a power of two) a node pointer, a vector pointer and a key-lookup entry.
  const graphBytes = shard.proxyIndex.length - PROXY_INDEX_HEADER_BYTES;
  const bytes = layout.rows * dim * (vectors === "i8" ? 1 : 2) + graphBytes + 2 ** Math.ceil(Math.log2(layout.rows)) * 32;
  const query = new Float32Array(dim);
  const score = rowScorer(shard);
  let live: Index | undefined = index;
  const proxy: ProxyIndex = {
    kind: "hnsw",
    bytes,
    search(vector, count) {
      if (!live) throw new Error("proxy index: used after close()");
      checkQuery(vector, count, dim);
      // Cosine ignores the scale; unit length keeps a tiny gradient inside f16's range.
      const norm = Math.sqrt(squaredNormOf(vector));
      const scale = norm > 0 ? 1 / norm : 1;
      for (let k = 0; k < dim; k++) query[k] = vector[k]! * scale;
      const pool = Math.min(layout.rows, Math.max(PROXY_MIN_POOL, PROXY_OVERFETCH * count));
      const found = live.search(query, pool, 1) as Matches;
      const top = new TopK(Math.min(count, found.keys.length));
      for (let i = 0; i < found.keys.length; i++) {
        const row = Number(found.keys[i]);
        top.push(row, score(row, vector));
      }
      return Uint32Array.from(top.sorted(), (hit) => hit.row);
    },
    close() {
      if (!live) return;
      const index = live;
      live = undefined;
      if (opened.get(shard) === proxy) opened.delete(shard);
      freeNative(index);
    },
  };
  return proxy;
}

/**
 * Frees usearch's native memory now: loading an (empty) file resets the index first. Best effort:
 * if the temp file cannot be written, the memory goes when V8 collects the wrapper.
 */
function freeNative(index: Index): void {
  const path = tempPath();
  try {
    const empty = newIndex(1, 2);
    empty.save(path);
    index.load(path);
  } catch {
    // The collector frees it eventually.
  } finally {
    rmSync(path, { force: true });
  }
}

// ─── Exact (no section) ──────────────────────────────────────────────────────────────────────

let halfTable: Float32Array | undefined;

/** Every half bit pattern's value, so the brute force reads fp16 rows by lookup. */
function halfValues(): Float32Array {
  halfTable ??= halfToFloat32Array(Uint16Array.from({ length: 65536 }, (_, i) => i));
  return halfTable;
}

/** The exact inner product of a shard row with a vector (fp16 rows read by table lookup). */
function rowScorer(shard: DecodedShard): (row: number, vector: Float32Array) => number {
  const { dim, embeddings } = shard;
  if (embeddings instanceof Uint16Array) {
    const table = halfValues();
    return (row, vector) => {
      let s = 0;
      for (let k = 0, at = row * dim; k < dim; k++, at++) s += table[embeddings[at]!]! * vector[k]!;
      return s;
    };
  }
  return (row, vector) => {
    let s = 0;
    for (let k = 0, at = row * dim; k < dim; k++, at++) s += embeddings[at]! * vector[k]!;
    return s;
  };
}

function exactProxy(shard: DecodedShard): ProxyIndex {
  const { dim, docCount } = shard;
  const score = rowScorer(shard);
  let closed = false;
  const proxy: ProxyIndex = {
    kind: "exact",
    bytes: 0,
    search(vector, count) {
      if (closed) throw new Error("proxy index: used after close()");
      checkQuery(vector, count, dim);
      const top = new TopK(Math.min(count, docCount));
      for (let r = 0; r < docCount; r++) top.push(r, score(r, vector));
      return Uint32Array.from(top.sorted(), (hit) => hit.row);
    },
    close() {
      closed = true;
      if (opened.get(shard) === proxy) opened.delete(shard);
    },
  };
  return proxy;
}
