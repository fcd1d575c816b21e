import { describe, expect, it } from "vitest";
import { ByteReader } from "./byte-reader.ts";
import { encodeNpyFloat32, encodeNpyHeader, NpyFormatError, parseNpyHeader, readNpyHeader } from "./npy.ts";

/** A header as NumPy writes version 2 and 3 files: u32 length at offset 8. */
function headerV(major: 2 | 3, dict: string): Uint8Array {
  const body = new TextEncoder().encode(dict);
  const out = new Uint8Array(12 + body.length);
  out.set([0x93, ...new TextEncoder().encode("NUMPY"), major, 0]);
  new DataView(out.buffer).setUint32(8, body.length, true);
  out.set(body, 12);
  return out;
}

describe("npy header", () => {
  it("parses version 1 headers as NumPy writes them, data 64-byte aligned", () => {
    const bytes = encodeNpyHeader("<f4", [300, 768]);
    expect(bytes.length % 64).toBe(0);
    expect(parseNpyHeader(bytes)).toEqual({ descr: "<f4", fortranOrder: false, shape: [300, 768], dataOffset: bytes.length });
    expect(parseNpyHeader(encodeNpyHeader("<f8", [5], true))).toMatchObject({ descr: "<f8", fortranOrder: true, shape: [5] });
  });

  it("parses version 2 and 3 headers (u32 length), any key order, Python 2 longs", () => {
    const v2 = headerV(2, "{'shape': (3L, 4L), 'fortran_order': False, 'descr': '<f4', }   \n");
    expect(parseNpyHeader(v2)).toEqual({ descr: "<f4", fortranOrder: false, shape: [3, 4], dataOffset: v2.length });
    const v3 = headerV(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 2), }\n");
    expect(parseNpyHeader(v3).shape).toEqual([0, 2]);
  });

  it("refuses what is not an .npy header", () => {
    expect(() => parseNpyHeader(new TextEncoder().encode("PK\u0003\u0004 not numpy"))).toThrow(NpyFormatError);
    expect(() => parseNpyHeader(headerV(2, "{'descr': '<f4'}"))).toThrow(/unreadable .npy header/);
    expect(() => parseNpyHeader(headerV(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, -1), }"))).toThrow(/bad .npy shape/);
    const v9 = encodeNpyHeader("<f4", [1, 1]);
    v9[6] = 9;
    expect(() => parseNpyHeader(v9)).toThrow(/unsupported .npy format version 9/);
  });

  it("reads the header from a chunked stream and leaves the reader at the data", async () => {
    const matrix = Float32Array.of(1, 2, 3, 4, 5, 6);
    const file = encodeNpyFloat32(matrix, 3, 2);
    const chunks = Array.from({ length: Math.ceil(file.length / 7) }, (_, i) => file.subarray(i * 7, (i + 1) * 7));
    const reader = new ByteReader((async function* () { yield* chunks; })());
    expect((await readNpyHeader(reader)).shape).toEqual([3, 2]);
    const data = await reader.read(24);
    expect(Array.from(new Float32Array(data.buffer))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await reader.atEnd()).toBe(true);
    expect((await reader.read(4)).length).toBe(0);
  });
});
