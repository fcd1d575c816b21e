/**
 * The NumPy .npy header (format versions 1, 2 and 3), parsed here rather than with a dependency:
 * prebuilt embeddings arrive as a float32 matrix, and all we need is the dtype, the order and the
 * shape. Layout: magic "\x93NUMPY", major and minor version bytes, the header length (u16 in v1,
 * u32 in v2/v3, little-endian), then a Python dict literal such as
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (300, 768), }` (latin-1; UTF-8 in v3),
 * padded with spaces to a 64-byte boundary. The data follows, row-major when not fortran_order.
 */
import { ByteReader } from "./byte-reader.ts";

const MAGIC = [0x93, ...new TextEncoder().encode("NUMPY")];
/** Magic (6) + version (2) + the v2/v3 u32 length (4): enough to know the header's length. */
export const NPY_PREAMBLE_BYTES = 12;
/** NumPy itself refuses headers over 10 KB unless told otherwise; leave generous room. */
const MAX_HEADER_BYTES = 1 << 20;

export interface NpyHeader {
  /** e.g. "<f4" */
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  /** Byte offset of the first data byte. */
  dataOffset: number;
}

export class NpyFormatError extends Error {
  override name = "NpyFormatError";
}

/** How many bytes, counted from the start of the file, the header occupies (from the first 12 bytes). */
export function npyHeaderEnd(preamble: Uint8Array): number {
  if (preamble.length < 10 || MAGIC.some((b, i) => preamble[i] !== b)) throw new NpyFormatError("not an .npy file (bad magic)");
  const major = preamble[6];
  const view = new DataView(preamble.buffer, preamble.byteOffset, preamble.byteLength);
  if (major === 1) return 10 + view.getUint16(8, true);
  if (major === 2 || major === 3) {
    if (preamble.length < 12) throw new NpyFormatError("truncated .npy header");
    const length = view.getUint32(8, true);
    if (length > MAX_HEADER_BYTES) throw new NpyFormatError(`implausible .npy header length ${length}`);
    return 12 + length;
  }
  throw new NpyFormatError(`unsupported .npy format version ${major}.${preamble[7]}`);
}

/** Parses the header from the file's first bytes (at least npyHeaderEnd of them). */
export function parseNpyHeader(bytes: Uint8Array): NpyHeader {
  const end = npyHeaderEnd(bytes);
  if (bytes.length < end) throw new NpyFormatError("truncated .npy header");
  const start = bytes[6] === 1 ? 10 : 12;
  const text = new TextDecoder(bytes[6] === 3 ? "utf-8" : "latin1").decode(bytes.subarray(start, end));
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new NpyFormatError(`unreadable .npy header ${JSON.stringify(text.trim().slice(0, 200))}`);
  }
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((s) => {
      const n = Number(s.replace(/L$/, "")); // Python 2 wrote longs as 300L
      if (!Number.isSafeInteger(n) || n < 0) throw new NpyFormatError(`bad .npy shape (${shapeText})`);
      return n;
    });
  return { descr, fortranOrder: fortran === "True", shape, dataOffset: end };
}

/** Reads and parses the header from a stream, leaving the reader at the first data byte. */
export async function readNpyHeader(reader: ByteReader): Promise<NpyHeader> {
  const preamble = await reader.read(NPY_PREAMBLE_BYTES);
  const end = npyHeaderEnd(preamble);
  const rest = await reader.read(end - preamble.length);
  const all = new Uint8Array(preamble.length + rest.length);
  all.set(preamble);
  all.set(rest, preamble.length);
  return parseNpyHeader(all);
}

/** The header bytes of a version-1 .npy file (for tests and tools that write embeddings). */
export function encodeNpyHeader(descr: string, shape: number[], fortranOrder = false): Uint8Array {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  let dict = `{'descr': '${descr}', 'fortran_order': ${fortranOrder ? "True" : "False"}, 'shape': (${dims}), }`;
  // Pad with spaces and end with "\n" so data starts on a 64-byte boundary, as NumPy does.
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  dict = `${dict.padEnd(total - 10 - 1, " ")}\n`;
  const out = new Uint8Array(total);
  out.set(MAGIC);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, dict.length, true);
  out.set(new TextEncoder().encode(dict), 10);
  return out;
}

/** A float32 [rows, dim] matrix as .npy bytes. */
export function encodeNpyFloat32(matrix: Float32Array, rows: number, dim: number): Uint8Array {
  const header = encodeNpyHeader("<f4", [rows, dim]);
  const out = new Uint8Array(header.length + matrix.byteLength);
  out.set(header);
  out.set(new Uint8Array(matrix.buffer, matrix.byteOffset, matrix.byteLength), header.length);
  return out;
}
