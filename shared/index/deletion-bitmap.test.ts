import { describe, expect, it } from "vitest";
import { decodeDeletionBitmap, DeletionBitmap, DELETES_MAGIC, encodeDeletionBitmap } from "./deletion-bitmap.ts";
import { IndexFormatError } from "./errors.ts";
import { crc32 } from "./crc32.ts";

function refused(bytes: Uint8Array, rows: number): string {
  try {
    decodeDeletionBitmap(bytes, rows, "deletes/s0.hxd");
  } catch (e) {
    expect(e).toBeInstanceOf(IndexFormatError);
    return (e as Error).message;
  }
  throw new Error("decoded a corrupt deletion bitmap");
}

describe("deletion bitmap", () => {
  it("marks rows, counts them once, and round-trips", () => {
    const bitmap = new DeletionBitmap(21);
    expect(bitmap.add(0)).toBe(true);
    expect(bitmap.add(20)).toBe(true);
    expect(bitmap.add(9)).toBe(true);
    expect(bitmap.add(9)).toBe(false);
    expect(bitmap.count).toBe(3);
    expect(() => bitmap.add(21)).toThrow(RangeError);
    const bytes = encodeDeletionBitmap(bitmap);
    expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe(DELETES_MAGIC);
    expect(bytes.length).toBe(24 + 3);
    const back = decodeDeletionBitmap(bytes, 21);
    expect(back.count).toBe(3);
    expect(Array.from({ length: 21 }, (_, r) => back.has(r)).flatMap((d, r) => (d ? [r] : []))).toEqual([0, 9, 20]);
    // copy() is independent.
    const copy = back.copy();
    copy.add(1);
    expect(back.has(1)).toBe(false);
  });

  it("decodes into its own memory: a copy of a bitmap read from a Node Buffer never writes back", () => {
    const bitmap = new DeletionBitmap(16);
    bitmap.add(2);
    const buffer = Buffer.from(encodeDeletionBitmap(bitmap));
    const read = decodeDeletionBitmap(buffer, 16);
    const copy = read.copy();
    copy.add(5);
    expect(read.has(5)).toBe(false);
    expect(read.count).toBe(1);
    buffer.fill(0);
    expect(read.has(2)).toBe(true);
  });

  it("detects corruption: flipped bits, wrong magic, another segment's size, a lying count, bits past the end", () => {
    const bitmap = new DeletionBitmap(12);
    bitmap.add(3);
    const good = encodeDeletionBitmap(bitmap);
    const flipped = good.slice();
    flipped[24]! ^= 0x01;
    expect(refused(flipped, 12)).toMatch(/CRC-32 mismatch/);
    const magic = good.slice();
    magic[0] = 0;
    expect(refused(magic, 12)).toMatch(/not a deletion bitmap/);
    expect(refused(good, 13)).toMatch(/covers 12 rows, the segment has 13/);
    expect(refused(good.subarray(0, 25), 12)).toMatch(/bytes of bits/);
    const count = good.slice();
    new DataView(count.buffer).setUint32(12, 2, true);
    expect(refused(count, 12)).toMatch(/header says 2 deleted rows/);
    // Bit 15 of a 12-row bitmap, with a matching CRC: still refused.
    const past = good.slice();
    past[25]! |= 0x80;
    new DataView(past.buffer).setUint32(16, crc32(past.subarray(24)) >>> 0, true);
    expect(refused(past, 12)).toMatch(/past the last row/);
  });
});
