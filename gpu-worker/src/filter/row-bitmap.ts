/**
 * Row bitmaps for filters: row r is bit r & 31 of u32 word r >> 5, the same bytes as the filter
 * columns' presence bitsets and (byte r >> 3, bit r & 7) as a deletion bitmap.
 *
 * Why u32 words rather than one byte per row or a Uint8Array of bits: and/or/not then touch 32
 * rows per operation (V8 has no fast 64-bit lanes: BigUint64Array is boxed and slow), the bitmap
 * of 1M rows is 128 KB and stays in L2, and counting and iterating set bits use popcount and
 * Math.clz32 per word. A Uint8Array with a byte per row would make every set operation 32 times
 * the work and 8 times the memory.
 */
import { rowBitsWords } from "../../../shared/index/filter-columns.ts";

export interface RowBitmap {
  rows: number;
  /** rowBitsWords(rows) words; bits past the last row are always 0. */
  words: Uint32Array;
}

export function emptyBitmap(rows: number): RowBitmap {
  return { rows, words: new Uint32Array(rowBitsWords(rows)) };
}

export function fullBitmap(rows: number): RowBitmap {
  const bitmap = emptyBitmap(rows);
  bitmap.words.fill(0xffffffff);
  clearTail(bitmap);
  return bitmap;
}

/** Clears the bits past the last row (after a complement). */
function clearTail({ rows, words }: RowBitmap): void {
  const full = rows >>> 5;
  if (full < words.length && (rows & 31) !== 0) words[full] &= (1 << (rows & 31)) - 1;
  for (let w = full + ((rows & 31) !== 0 ? 1 : 0); w < words.length; w++) words[w] = 0;
}

export function hasRow({ words }: RowBitmap, row: number): boolean {
  return (words[row >>> 5] & (1 << (row & 31))) !== 0;
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

export function countRows({ words }: RowBitmap): number {
  let n = 0;
  for (let w = 0; w < words.length; w++) n += popcount32(words[w]);
  return n;
}

/** a ← a ∧ b. */
export function andInto(a: RowBitmap, b: RowBitmap): void {
  for (let w = 0; w < a.words.length; w++) a.words[w] &= b.words[w];
}

/** a ← a ∨ b. */
export function orInto(a: RowBitmap, b: RowBitmap): void {
  for (let w = 0; w < a.words.length; w++) a.words[w] |= b.words[w];
}

/** a ← ¬a (over the bitmap's rows only). */
export function complementInPlace(a: RowBitmap): void {
  for (let w = 0; w < a.words.length; w++) a.words[w] = ~a.words[w];
  clearTail(a);
}

/**
 * Clears the rows a deletion bitmap marks (shared/index/deletion-bitmap.ts `bits`: byte r >> 3,
 * bit r & 7), so the count and the rows are live matches only.
 */
export function removeDeletedRows(a: RowBitmap, deletedBits: Uint8Array): void {
  const n = Math.min(deletedBits.length, a.words.length * 4);
  for (let i = 0; i < n; i++) {
    const b = deletedBits[i];
    if (b !== 0) a.words[i >>> 2] &= ~(b << ((i & 3) * 8));
  }
}

/**
 * Clears every set row for which `isDead(row)` holds (e.g. rows a tail write hides), visiting only
 * set rows, so it costs O(matches), not O(rows). Returns how many were cleared.
 */
export function removeRowsWhere(a: RowBitmap, isDead: (row: number) => boolean): number {
  let cleared = 0;
  const { words } = a;
  for (let w = 0; w < words.length; w++) {
    let x = words[w];
    while (x !== 0) {
      const low = x & -x;
      if (isDead(w * 32 + (31 - Math.clz32(low)))) {
        words[w] &= ~low;
        cleared++;
      }
      x ^= low;
    }
  }
  return cleared;
}

/** The set rows in increasing order (the rows a filtered exhaustive search scores). */
export function bitmapRows(bitmap: RowBitmap, count = countRows(bitmap)): Uint32Array {
  const out = new Uint32Array(count);
  const { words } = bitmap;
  let k = 0;
  for (let w = 0; w < words.length && k < count; w++) {
    let x = words[w];
    while (x !== 0) {
      const low = x & -x;
      out[k++] = w * 32 + (31 - Math.clz32(low));
      x ^= low;
    }
  }
  return out;
}

/** rank(row) = how many set rows precede `row`, via per-word prefix counts. */
export function prefixCounts({ words }: RowBitmap): Uint32Array {
  const prefix = new Uint32Array(words.length + 1);
  for (let w = 0; w < words.length; w++) prefix[w + 1] = prefix[w] + popcount32(words[w]);
  return prefix;
}

export function rankOf(bitmap: RowBitmap, prefix: Uint32Array, row: number): number {
  const w = row >>> 5;
  const below = (row & 31) === 0 ? 0 : bitmap.words[w] & (0xffffffff >>> (32 - (row & 31)));
  return prefix[w] + popcount32(below);
}

/** The set rows at the given ranks (sorted ascending, each < the count), in the same order. */
export function selectRows(bitmap: RowBitmap, prefix: Uint32Array, sortedRanks: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(sortedRanks.length);
  let w = 0;
  for (let i = 0; i < sortedRanks.length; i++) {
    const rank = sortedRanks[i];
    while (prefix[w + 1] <= rank) w++;
    let x = bitmap.words[w];
    for (let skip = rank - prefix[w]; skip > 0; skip--) x &= x - 1;
    out[i] = w * 32 + (31 - Math.clz32(x & -x));
  }
  return out;
}
