/**
 * The shard's optional `proxyIndex` section: an index for maximum-inner-product search over the
 * shard's own embeddings, from which graph search takes its entry rows (the rows with the best
 * inner product with a query's proxy vector, e.g. its q-net's gradient). Documented byte by byte
 * in shared/FORMATS.md ("The proxyIndex section").
 *
 * It is a usearch 2.x HNSW graph built with the cosine metric; the reader asks it for a few times
 * the rows wanted and reranks those by their exact inner product. Measured on 20k clustered 768-d
 * rows whose norms vary 5× (recall of the top 64 by inner product): cosine graph + rerank 0.75 for
 * random and 1.00 for regional query vectors; usearch's inner-product metric 0.41 (at 64-d) and
 * no better than 0.72 at any ef; the L2 reduction (Bachrach et al., 2014: an extra coordinate
 * sqrt(M² − ‖x‖²)) 0.24 and 0.98, because the extra coordinate puts every query far from the data.
 *
 * The section is usearch's own serialisation of an index_dense with the vectors left out: a
 * 32-byte header of ours, then usearch's 64-byte dense head, its 40-byte graph header, one i16
 * level per slot and every node. The vectors are the shard's embeddings (as f16), so the section
 * costs the graph only (about 150 bytes a row at connectivity 16, against 1,536 for a 768-d fp16
 * embedding); the reader puts usearch's file back together from both.
 *
 * usearch trusts the files it loads: a neighbour slot past the end, a negative level or a
 * neighbour count over capacity would make it read out of bounds. So every field and every
 * neighbour is checked here, before usearch sees a byte (parseProxyIndexSection): a section that
 * fails is an IndexFormatError and its shard is refused.
 */

/** ASCII magic at offset 0. */
export const PROXY_INDEX_MAGIC = "HYPXPRXY";
export const PROXY_INDEX_LAYOUT_VERSION = 1;
/** Our header: magic, layout version, rows, dim, scalar kind, reserved. */
export const PROXY_INDEX_HEADER_BYTES = 32;
/** usearch's index_dense_head_t buffer. */
export const USEARCH_DENSE_HEAD_BYTES = 64;
/** usearch's index_serialized_header_t: size, connectivity, connectivity_base, max_level, entry_slot (u64 each). */
export const USEARCH_GRAPH_HEADER_BYTES = 40;
/** Where the nodes' levels start. */
export const PROXY_INDEX_LEVELS_OFFSET = PROXY_INDEX_HEADER_BYTES + USEARCH_DENSE_HEAD_BYTES + USEARCH_GRAPH_HEADER_BYTES;

/** usearch scalar_kind_t codes. */
export const USEARCH_SCALAR_F16 = 12;
const USEARCH_SCALAR_U64 = 14;
const USEARCH_SCALAR_U32 = 15;
/** usearch metric_kind_t for the cosine distance ('c'). */
const USEARCH_METRIC_COS = 0x63;
const USEARCH_MAGIC = "usearch";
/** The usearch major version whose layout this is (2.10 and later: no pre-2.10 kind codes). */
export const USEARCH_MAJOR = 2;
const USEARCH_MIN_MINOR = 10;
/** Sanity bounds: usearch caps nothing, and an absurd value would only make it allocate wildly. */
export const PROXY_MAX_CONNECTIVITY = 256;
const MAX_LEVEL = 64;
/** A node's head: key (u64) and level (i16). */
const NODE_HEAD_BYTES = 10;

export interface ProxyIndexLayout {
  rows: number;
  dim: number;
  connectivity: number;
  connectivityBase: number;
  /** Slot → shard row (usearch's key); multithreaded adds put rows in slots in any order. */
  slotRows: Uint32Array;
}

const MAGIC_BYTES = new TextEncoder().encode(PROXY_INDEX_MAGIC);
const USEARCH_MAGIC_BYTES = new TextEncoder().encode(USEARCH_MAGIC);

/**
 * Checks a proxyIndex section against its shard (docCount rows of `dim`) and returns its layout,
 * or the first problem as a string. Every byte is accounted for: the section must be exactly as
 * long as its graph says.
 */
export function parseProxyIndexSection(section: Uint8Array, docCount: number, dim: number): ProxyIndexLayout | string {
  if (section.length < PROXY_INDEX_LEVELS_OFFSET) return `proxyIndex is ${section.length} bytes, shorter than its ${PROXY_INDEX_LEVELS_OFFSET}-byte headers`;
  const view = new DataView(section.buffer, section.byteOffset, section.byteLength);
  for (let i = 0; i < MAGIC_BYTES.length; i++) if (section[i] !== MAGIC_BYTES[i]) return `proxyIndex: bad magic (not ${PROXY_INDEX_MAGIC})`;
  const layoutVersion = view.getUint32(8, true);
  if (layoutVersion !== PROXY_INDEX_LAYOUT_VERSION) return `proxyIndex: unsupported layout version ${layoutVersion}; this reader reads ${PROXY_INDEX_LAYOUT_VERSION}`;
  const rows = view.getUint32(12, true);
  if (rows !== docCount) return `proxyIndex covers ${rows} rows, the shard has ${docCount}`;
  if (rows === 0) return "proxyIndex covers no rows (an empty index is written as no section)";
  if (view.getUint32(16, true) !== dim) return `proxyIndex dim ${view.getUint32(16, true)}, the shard's is ${dim}`;
  if (section[20] !== USEARCH_SCALAR_F16) return `proxyIndex: vector scalar kind ${section[20]}, expected f16 (${USEARCH_SCALAR_F16})`;
  for (let i = 21; i < PROXY_INDEX_HEADER_BYTES; i++) if (section[i] !== 0) return "proxyIndex: reserved header bytes are not zero";

  // usearch's dense head (index_dense_head_t), packed without padding.
  const h = PROXY_INDEX_HEADER_BYTES;
  for (let i = 0; i < USEARCH_MAGIC_BYTES.length; i++) if (section[h + i] !== USEARCH_MAGIC_BYTES[i]) return "proxyIndex: bad usearch magic";
  const major = view.getUint16(h + 7, true);
  const minor = view.getUint16(h + 9, true);
  if (major !== USEARCH_MAJOR || minor < USEARCH_MIN_MINOR) return `proxyIndex: usearch format ${major}.${minor}, this reader reads ${USEARCH_MAJOR}.${USEARCH_MIN_MINOR} or later ${USEARCH_MAJOR}.x`;
  if (section[h + 13] !== USEARCH_METRIC_COS) return `proxyIndex: metric ${section[h + 13]}, expected cosine (${USEARCH_METRIC_COS})`;
  if (section[h + 14] !== USEARCH_SCALAR_F16) return `proxyIndex: usearch scalar kind ${section[h + 14]}, expected f16`;
  if (section[h + 15] !== USEARCH_SCALAR_U64) return `proxyIndex: key kind ${section[h + 15]}, expected u64`;
  if (section[h + 16] !== USEARCH_SCALAR_U32) return `proxyIndex: slot kind ${section[h + 16]}, expected u32`;
  if (view.getBigUint64(h + 17, true) !== BigInt(rows)) return `proxyIndex: usearch holds ${view.getBigUint64(h + 17, true)} vectors, expected ${rows}`;
  if (view.getBigUint64(h + 25, true) !== 0n) return "proxyIndex: usearch index has deleted entries";
  if (view.getBigUint64(h + 33, true) !== BigInt(dim)) return `proxyIndex: usearch dimensions ${view.getBigUint64(h + 33, true)}, expected ${dim}`;
  if (section[h + 41] !== 0) return "proxyIndex: usearch index is a multi-index";
  for (let i = h + 42; i < h + USEARCH_DENSE_HEAD_BYTES; i++) if (section[i] !== 0) return "proxyIndex: usearch head padding is not zero";

  // The graph header (index_serialized_header_t).
  const g = h + USEARCH_DENSE_HEAD_BYTES;
  const u64 = (at: number): number => {
    const value = view.getBigUint64(at, true);
    return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
  };
  const size = u64(g);
  const connectivity = u64(g + 8);
  const connectivityBase = u64(g + 16);
  const maxLevel = u64(g + 24);
  const entrySlot = u64(g + 32);
  if (size !== rows) return `proxyIndex: graph has ${size} nodes, expected ${rows}`;
  if (connectivity < 2 || connectivity > PROXY_MAX_CONNECTIVITY) return `proxyIndex: connectivity ${connectivity} is outside 2..${PROXY_MAX_CONNECTIVITY}`;
  if (connectivityBase < connectivity || connectivityBase > 2 * PROXY_MAX_CONNECTIVITY) {
    return `proxyIndex: base connectivity ${connectivityBase} is outside ${connectivity}..${2 * PROXY_MAX_CONNECTIVITY}`;
  }
  if (maxLevel >= MAX_LEVEL) return `proxyIndex: max level ${maxLevel} is implausible (at most ${MAX_LEVEL - 1})`;
  if (entrySlot >= rows) return `proxyIndex: entry slot ${entrySlot} is not below ${rows}`;

  // Levels, then the section's exact length.
  if (section.length < PROXY_INDEX_LEVELS_OFFSET + 2 * rows) return "proxyIndex: truncated in the node levels";
  const levels = new Int16Array(rows);
  let highest = 0;
  const baseBytes = 4 + 4 * connectivityBase;
  const upperBytes = 4 + 4 * connectivity;
  let expected = PROXY_INDEX_LEVELS_OFFSET + 2 * rows;
  for (let s = 0; s < rows; s++) {
    const level = view.getInt16(PROXY_INDEX_LEVELS_OFFSET + 2 * s, true);
    if (level < 0 || level > maxLevel) return `proxyIndex: node ${s} has level ${level}, outside 0..${maxLevel}`;
    levels[s] = level;
    if (level > highest) highest = level;
    expected += NODE_HEAD_BYTES + baseBytes + level * upperBytes;
  }
  if (highest !== maxLevel) return `proxyIndex: max level ${maxLevel}, but the highest node level is ${highest}`;
  if (levels[entrySlot] !== maxLevel) return `proxyIndex: entry slot ${entrySlot} is on level ${levels[entrySlot]}, not the top level ${maxLevel}`;
  if (section.length !== expected) return `proxyIndex is ${section.length} bytes, its graph needs exactly ${expected}`;

  // Nodes: key (a shard row, each once), level (as listed), then per level a count and that many slots.
  const slotRows = new Uint32Array(rows);
  const seen = new Uint8Array(rows);
  let at = PROXY_INDEX_LEVELS_OFFSET + 2 * rows;
  for (let s = 0; s < rows; s++) {
    const keyLow = view.getUint32(at, true);
    if (view.getUint32(at + 4, true) !== 0 || keyLow >= rows) return `proxyIndex: node ${s} has key ${view.getBigUint64(at, true)}, not a row below ${rows}`;
    if (seen[keyLow]) return `proxyIndex: row ${keyLow} appears twice`;
    seen[keyLow] = 1;
    slotRows[s] = keyLow;
    if (view.getInt16(at + 8, true) !== levels[s]) return `proxyIndex: node ${s} says level ${view.getInt16(at + 8, true)}, the level list says ${levels[s]}`;
    at += NODE_HEAD_BYTES;
    for (let level = 0; level <= levels[s]; level++) {
      const capacity = level === 0 ? connectivityBase : connectivity;
      const count = view.getUint32(at, true);
      if (count > capacity) return `proxyIndex: node ${s} has ${count} neighbours on level ${level}, more than ${capacity}`;
      for (let j = 0; j < count; j++) {
        const neighbour = view.getUint32(at + 4 + 4 * j, true);
        // A search on level l reads the neighbour's level-l list: it must have one.
        if (neighbour >= rows || levels[neighbour] < level) return `proxyIndex: node ${s} links to slot ${neighbour} on level ${level}, which has no such node`;
      }
      at += 4 + 4 * capacity;
    }
  }
  return { rows, dim, connectivity, connectivityBase, slotRows };
}
