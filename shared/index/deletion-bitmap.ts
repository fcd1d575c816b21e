/**
 * A segment's deletion bitmap (`versions/vNNNNNN/deletes/<segment>.hxd`), Lucene's live-docs
 * inverted: bit r set means row r of the segment is deleted (or replaced by a newer write) and is
 * never returned. Written by the compaction that deletes the rows, referenced (with its sha256)
 * from that version's format 2 manifest; a later compaction writes a new, fuller bitmap rather than
 * changing this one. Documented in shared/FORMATS.md ("Deletion bitmap").
 *
 *   magic "HYPXDEL1" (8) | rows u32 LE | deleted count u32 LE | bits CRC-32 u32 LE | reserved u32 (0)
 *   | bits: ceil(rows / 8) bytes, row r at byte r >> 3, bit r & 7 (least significant first)
 */
import { crc32 } from "./crc32.ts";
import { IndexFormatError } from "./errors.ts";

export const DELETES_MAGIC = "HYPXDEL1";
const HEADER_BYTES = 24;
const MAGIC_BYTES = new TextEncoder().encode(DELETES_MAGIC);

export class DeletionBitmap {
  readonly bits: Uint8Array;
  private deleted: number;

  constructor(
    readonly rows: number,
    bits?: Uint8Array,
  ) {
    this.bits = bits ?? new Uint8Array(Math.ceil(rows / 8));
    if (this.bits.length !== Math.ceil(rows / 8)) throw new RangeError(`a bitmap of ${rows} rows needs ${Math.ceil(rows / 8)} bytes, got ${this.bits.length}`);
    let n = 0;
    for (let r = 0; r < rows; r++) if (this.bits[r >> 3]! & (1 << (r & 7))) n++;
    this.deleted = n;
  }

  has(row: number): boolean {
    return (this.bits[row >> 3]! & (1 << (row & 7))) !== 0;
  }

  /** Marks a row deleted; true when it was live. */
  add(row: number): boolean {
    if (!Number.isInteger(row) || row < 0 || row >= this.rows) throw new RangeError(`row ${row} is outside the segment (0..${this.rows - 1})`);
    if (this.has(row)) return false;
    this.bits[row >> 3]! |= 1 << (row & 7);
    this.deleted++;
    return true;
  }

  get count(): number {
    return this.deleted;
  }

  copy(): DeletionBitmap {
    // new Uint8Array(x) always copies (a Node Buffer's slice() would share memory).
    return new DeletionBitmap(this.rows, new Uint8Array(this.bits));
  }
}

export function encodeDeletionBitmap(bitmap: DeletionBitmap): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + bitmap.bits.length);
  out.set(MAGIC_BYTES, 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(8, bitmap.rows, true);
  dv.setUint32(12, bitmap.count, true);
  dv.setUint32(16, crc32(bitmap.bits) >>> 0, true);
  dv.setUint32(20, 0, true);
  out.set(bitmap.bits, HEADER_BYTES);
  return out;
}

/** Decodes and verifies; `expectedRows` is the segment's docCount from the manifest. */
export function decodeDeletionBitmap(bytes: Uint8Array, expectedRows: number, label = "deletion bitmap"): DeletionBitmap {
  const fail = (problem: string): never => {
    throw new IndexFormatError(`${label}: ${problem}`);
  };
  if (bytes.length < HEADER_BYTES) fail(`${bytes.length} bytes is too short`);
  for (let i = 0; i < MAGIC_BYTES.length; i++) if (bytes[i] !== MAGIC_BYTES[i]) fail(`not a deletion bitmap (magic is not ${DELETES_MAGIC})`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const rows = dv.getUint32(8, true);
  if (rows !== expectedRows) fail(`covers ${rows} rows, the segment has ${expectedRows}`);
  // A copy, never a view: the store's bytes may be a pooled Node Buffer, whose slice() shares memory.
  const bits = new Uint8Array(bytes.subarray(HEADER_BYTES));
  if (bits.length !== Math.ceil(rows / 8)) fail(`${bits.length} bytes of bits for ${rows} rows`);
  if ((crc32(bits) >>> 0) !== dv.getUint32(16, true)) fail("bits CRC-32 mismatch (corrupt object)");
  const bitmap = new DeletionBitmap(rows, bits);
  if (bitmap.count !== dv.getUint32(12, true)) fail(`header says ${dv.getUint32(12, true)} deleted rows, the bits hold ${bitmap.count}`);
  // Bits past the last row must be zero, so one set of rows has one encoding.
  for (let r = rows; r < bits.length * 8; r++) if (bits[r >> 3]! & (1 << (r & 7))) fail(`bit ${r} is set past the last row`);
  return bitmap;
}
