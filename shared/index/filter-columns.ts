/**
 * Filter columns (`.hxf`): one segment's declared filterable fields (shared/filter/schema.ts) in a
 * column layout, so a filter compiles to a matching-row bitmap with tight loops over typed arrays
 * instead of decoding each row's stored fields. Documented in shared/FORMATS.md ("Filter columns").
 *
 *   preamble (24 bytes): magic "HYPXFCOL" | version u32 LE (1) | header length u32 LE
 *                        | header CRC-32 u32 LE | body CRC-32 u32 LE
 *   header: UTF-8 JSON {rows, bodyBytes, columns: [{name, type, sections: {name: [offset, length]}}]}
 *   zero padding to a multiple of 8; then the body: sections, each at an 8-byte aligned offset
 *   (relative to the body start), zero-padded to the next one, the body itself a multiple of 8.
 *
 * Sections per column (all integers little-endian):
 *   every type  presence   bitset: row r is bit r & 31 of u32 word r >> 5 (= byte r >> 3, bit r & 7),
 *                          ceil(rows / 64) × 8 bytes; a clear bit means absent (missing or null)
 *   number      values     float64 × rows (absent rows 0; -0 is stored as 0)
 *   boolean     values     bitset like presence (absent rows 0)
 *   string      dictOffsets u32 × (entries + 1), dictBytes (UTF-8): entry i is
 *                          dictBytes[dictOffsets[i] .. dictOffsets[i + 1]); entries strictly
 *                          increasing in code point (= UTF-8 byte) order
 *               codes      u32 × rows: the row's dictionary entry (absent rows 0)
 *   string[]    dictOffsets, dictBytes as for string
 *               listOffsets u32 × (rows + 1): row r's codes are codes[listOffsets[r] .. listOffsets[r + 1])
 *               codes      u32 × listOffsets[rows], each row's strictly increasing (a set:
 *                          duplicates in the document are dropped); absent rows have none
 * Everything is canonical (one set of rows has one encoding), and the decoder checks all of it.
 */
import { z } from "zod";
import { compareCodePoints } from "../filter/filter.ts";
import { FIELD_TYPES, type FieldSchema, type FieldType, fieldValue, valueHasType } from "../filter/schema.ts";
import { portableChecksums, type ShardChecksums } from "./checksums.ts";
import { IndexFormatError } from "./errors.ts";

export const FILTER_COLUMNS_MAGIC = "HYPXFCOL";
export const FILTER_COLUMNS_VERSION = 1;
export const FILTER_COLUMNS_EXTENSION = ".hxf";
const PREAMBLE_BYTES = 24;
const ALIGNMENT = 8;
/** Headers are a few KB (64 fields at most); the cap stops a corrupt length from allocating wildly. */
const MAX_HEADER_BYTES = 1 << 20;
const MAGIC_BYTES = new TextEncoder().encode(FILTER_COLUMNS_MAGIC);
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A bitset over rows, as u32 words (2 per 64 rows); bits past the last row are 0. */
export type RowBits = Uint32Array;

export type FilterColumn =
  | { type: "string"; presence: RowBits; dictionary: string[]; codes: Uint32Array }
  | { type: "number"; presence: RowBits; values: Float64Array }
  | { type: "boolean"; presence: RowBits; values: RowBits }
  | { type: "string[]"; presence: RowBits; dictionary: string[]; listOffsets: Uint32Array; codes: Uint32Array };

export interface FilterColumns {
  rows: number;
  /** One column per declared field, in the schema's order at build time. */
  columns: ReadonlyMap<string, FilterColumn>;
}

/** u32 words of a row bitset: whole u64s, so the bytes are the same on disk for any word size. */
export function rowBitsWords(rows: number): number {
  return Math.ceil(rows / 64) * 2;
}

function setBit(bits: RowBits, row: number): void {
  bits[row >>> 5] |= 1 << (row & 31);
}

function hasBit(bits: RowBits, row: number): boolean {
  return (bits[row >>> 5] & (1 << (row & 31))) !== 0;
}

function sortedDictionary(values: Iterable<string>): { entries: string[]; codeOf: Map<string, number> } {
  const entries = [...new Set(values)].sort(compareCodePoints);
  return { entries, codeOf: new Map(entries.map((s, i) => [s, i])) };
}

/**
 * Builds the columns of `schema`'s fields from one segment's documents (row r = docs[r]). A
 * declared field with the wrong type throws IndexFormatError naming the row and field (builds
 * and writes check documents with checkDocumentFields first, so this is a bug guard).
 */
export function buildFilterColumns(schema: FieldSchema, docs: readonly Readonly<Record<string, unknown>>[]): FilterColumns {
  const rows = docs.length;
  const columns = new Map<string, FilterColumn>();
  for (const [name, type] of Object.entries(schema)) {
    const presence = new Uint32Array(rowBitsWords(rows));
    const values: unknown[] = new Array(rows);
    for (let r = 0; r < rows; r++) {
      const v = fieldValue(docs[r]!, name);
      if (v === undefined) continue;
      if (!valueHasType(v, type)) throw new IndexFormatError(`filter columns: row ${r}: field "${name}" is declared ${type}, got ${JSON.stringify(v)}`);
      setBit(presence, r);
      values[r] = v;
    }
    columns.set(name, buildColumn(type, presence, values, rows));
  }
  return { rows, columns };
}

function buildColumn(type: FieldType, presence: RowBits, values: unknown[], rows: number): FilterColumn {
  switch (type) {
    case "number": {
      const out = new Float64Array(rows);
      for (let r = 0; r < rows; r++) if (values[r] !== undefined) out[r] = (values[r] as number) + 0; // -0 + 0 is 0
      return { type, presence, values: out };
    }
    case "boolean": {
      const out = new Uint32Array(rowBitsWords(rows));
      for (let r = 0; r < rows; r++) if (values[r] === true) setBit(out, r);
      return { type, presence, values: out };
    }
    case "string": {
      const { entries, codeOf } = sortedDictionary(values.filter((v): v is string => v !== undefined));
      const codes = new Uint32Array(rows);
      for (let r = 0; r < rows; r++) if (values[r] !== undefined) codes[r] = codeOf.get(values[r] as string)!;
      return { type, presence, dictionary: entries, codes };
    }
    case "string[]": {
      const { entries, codeOf } = sortedDictionary(values.flatMap((v) => (v === undefined ? [] : (v as string[]))));
      const listOffsets = new Uint32Array(rows + 1);
      const lists: Uint32Array[] = [];
      for (let r = 0; r < rows; r++) {
        const list = values[r] === undefined ? new Uint32Array(0) : Uint32Array.from(new Set((values[r] as string[]).map((s) => codeOf.get(s)!))).sort();
        lists.push(list);
        listOffsets[r + 1] = listOffsets[r] + list.length;
      }
      const codes = new Uint32Array(listOffsets[rows]);
      lists.forEach((list, r) => codes.set(list, listOffsets[r]));
      return { type, presence, dictionary: entries, listOffsets, codes };
    }
  }
}

/**
 * Row `row`'s declared field values as a document would hold them (absent fields left out;
 * string[] as its set, in code point order). Compaction merges rebuild a merged segment's columns
 * with buildFilterColumns over these, since stored fields need not include the filterable ones.
 */
export function rowFieldValues(set: FilterColumns, row: number): Record<string, unknown> {
  if (!Number.isInteger(row) || row < 0 || row >= set.rows) throw new RangeError(`row ${row} is outside the columns (0..${set.rows - 1})`);
  const out: Record<string, unknown> = {};
  for (const [name, c] of set.columns) {
    if (!hasBit(c.presence, row)) continue;
    switch (c.type) {
      case "number":
        out[name] = c.values[row];
        break;
      case "boolean":
        out[name] = hasBit(c.values, row);
        break;
      case "string":
        out[name] = c.dictionary[c.codes[row]];
        break;
      case "string[]":
        out[name] = Array.from(c.codes.subarray(c.listOffsets[row], c.listOffsets[row + 1]), (code) => c.dictionary[code]);
        break;
    }
  }
  return out;
}

const SECTIONS_BY_TYPE: Readonly<Record<FieldType, readonly string[]>> = {
  string: ["presence", "dictOffsets", "dictBytes", "codes"],
  number: ["presence", "values"],
  boolean: ["presence", "values"],
  "string[]": ["presence", "dictOffsets", "dictBytes", "listOffsets", "codes"],
};

const sectionRef = z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]);
const headerSchema = z.object({
  rows: z.number().int().nonnegative().max(0xffffffff),
  bodyBytes: z.number().int().nonnegative(),
  columns: z.array(
    z.object({
      name: z.string().min(1),
      type: z.enum(FIELD_TYPES),
      sections: z.record(z.string(), sectionRef),
    }),
  ),
});
type Header = z.infer<typeof headerSchema>;

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function encodeDictionary(entries: string[]): { dictOffsets: Uint8Array; dictBytes: Uint8Array } {
  const encoder = new TextEncoder();
  const parts = entries.map((s) => encoder.encode(s));
  const offsets = new Uint32Array(entries.length + 1);
  parts.forEach((p, i) => (offsets[i + 1] = offsets[i] + p.length));
  const blob = new Uint8Array(offsets[entries.length]);
  parts.forEach((p, i) => blob.set(p, offsets[i]));
  return { dictOffsets: bytesOf(offsets), dictBytes: blob };
}

function columnSections(column: FilterColumn): Record<string, Uint8Array> {
  const presence = bytesOf(column.presence);
  switch (column.type) {
    case "number":
    case "boolean":
      return { presence, values: bytesOf(column.values) };
    case "string":
      return { presence, ...encodeDictionary(column.dictionary), codes: bytesOf(column.codes) };
    case "string[]":
      return { presence, ...encodeDictionary(column.dictionary), listOffsets: bytesOf(column.listOffsets), codes: bytesOf(column.codes) };
  }
}

const align8 = (n: number): number => Math.ceil(n / ALIGNMENT) * ALIGNMENT;

export function encodeFilterColumns(set: FilterColumns, options: { checksums?: ShardChecksums } = {}): Uint8Array {
  const { crc32 } = options.checksums ?? portableChecksums;
  if (!HOST_IS_LITTLE_ENDIAN) throw new IndexFormatError("filter columns need a little-endian host");
  const header: Header = { rows: set.rows, bodyBytes: 0, columns: [] };
  const payloads: { at: number; bytes: Uint8Array }[] = [];
  let at = 0;
  for (const [name, column] of set.columns) {
    const sections: Record<string, [number, number]> = {};
    for (const [section, bytes] of Object.entries(columnSections(column))) {
      sections[section] = [at, bytes.length];
      payloads.push({ at, bytes });
      at = align8(at + bytes.length);
    }
    header.columns.push({ name, type: column.type, sections });
  }
  header.bodyBytes = at;
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const bodyStart = align8(PREAMBLE_BYTES + headerBytes.length);
  const out = new Uint8Array(bodyStart + at);
  out.set(MAGIC_BYTES, 0);
  out.set(headerBytes, PREAMBLE_BYTES);
  for (const p of payloads) out.set(p.bytes, bodyStart + p.at);
  const dv = new DataView(out.buffer);
  dv.setUint32(8, FILTER_COLUMNS_VERSION, true);
  dv.setUint32(12, headerBytes.length, true);
  dv.setUint32(16, crc32(headerBytes), true);
  dv.setUint32(20, crc32(out.subarray(bodyStart)), true);
  return out;
}

export interface DecodeFilterColumnsOptions {
  /** The segment's row count (manifest docCount): the columns must cover exactly these rows. */
  expectedRows?: number;
  /** The index's field schema: the columns must be exactly its fields with its types. */
  expectedSchema?: FieldSchema;
  /** Names the object in error messages. */
  label?: string;
  /** Faster host implementations (the worker's nodeChecksums); defaults to portable pure JS. */
  checksums?: ShardChecksums;
}

/**
 * Verifies and opens filter columns: magic, version, header CRC and schema, sizes, section bounds
 * and alignment, body CRC, then each column's content (bits past the last row, absent rows zero,
 * sorted valid-UTF-8 dictionaries, codes in range, sorted lists). Typed arrays are views into
 * `bytes` (copied once if the body is not 8-byte aligned in its buffer). Throws IndexFormatError.
 */
export function decodeFilterColumns(bytes: Uint8Array, options: DecodeFilterColumnsOptions = {}): FilterColumns {
  const label = options.label ? `filter columns ${options.label}` : "filter columns";
  const { crc32 } = options.checksums ?? portableChecksums;
  const fail = (problem: string): never => {
    throw new IndexFormatError(`${label}: ${problem}`);
  };
  if (!HOST_IS_LITTLE_ENDIAN) fail("needs a little-endian host");
  if (bytes.length < PREAMBLE_BYTES) fail(`truncated: ${bytes.length} bytes is shorter than the ${PREAMBLE_BYTES}-byte preamble`);
  for (let i = 0; i < MAGIC_BYTES.length; i++) if (bytes[i] !== MAGIC_BYTES[i]) fail(`bad magic: not a ${FILTER_COLUMNS_MAGIC} file`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== FILTER_COLUMNS_VERSION) fail(`unsupported version ${version} (this reader knows ${FILTER_COLUMNS_VERSION})`);
  const headerLength = dv.getUint32(12, true);
  if (headerLength > MAX_HEADER_BYTES || PREAMBLE_BYTES + headerLength > bytes.length) fail(`header length ${headerLength} runs past the ${bytes.length}-byte file`);
  const headerBytes = bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerLength);
  if (crc32(headerBytes) !== dv.getUint32(16, true)) fail("header CRC-32 mismatch (corrupt object)");
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch {
    fail("header is not UTF-8 JSON");
  }
  const result = headerSchema.safeParse(parsed);
  if (!result.success) fail(`bad header: ${result.error.issues[0]?.message ?? "invalid"}`);
  const header = result.data!;
  const rows = header.rows;
  if (options.expectedRows !== undefined && rows !== options.expectedRows) fail(`covers ${rows} rows, the segment has ${options.expectedRows}`);
  const bodyStart = align8(PREAMBLE_BYTES + headerLength);
  for (let i = PREAMBLE_BYTES + headerLength; i < Math.min(bodyStart, bytes.length); i++) if (bytes[i] !== 0) fail("non-zero padding after the header");
  if (bytes.length !== bodyStart + header.bodyBytes) {
    fail(`size mismatch: header says ${bodyStart + header.bodyBytes} bytes, got ${bytes.length}${bytes.length < bodyStart + header.bodyBytes ? " (truncated)" : ""}`);
  }
  if (header.bodyBytes % ALIGNMENT !== 0) fail(`body of ${header.bodyBytes} bytes is not a multiple of ${ALIGNMENT}`);
  let body = bytes.subarray(bodyStart);
  if (crc32(body) !== dv.getUint32(20, true)) fail("body CRC-32 mismatch (corrupt object)");
  if (body.byteOffset % ALIGNMENT !== 0) body = body.slice();

  if (options.expectedSchema) {
    // Order-insensitive: the schema's key order is a property of whoever last serialised it.
    const key = (pairs: string[][]) => JSON.stringify(pairs.map((p) => p.join("\u0000")).sort());
    const want = Object.entries(options.expectedSchema);
    const got = header.columns.map((c) => [c.name, c.type]);
    if (key(want) !== key(got)) fail(`columns ${JSON.stringify(Object.fromEntries(got))} do not match the index's fields ${JSON.stringify(options.expectedSchema)}`);
  }

  const columns = new Map<string, FilterColumn>();
  // One pass of bounds checks: a section is in the body, aligned and not overlapping the previous one.
  let end = 0;
  for (const c of header.columns) {
    if (columns.has(c.name)) fail(`column "${c.name}" appears twice`);
    const want = SECTIONS_BY_TYPE[c.type];
    const names = Object.keys(c.sections);
    if (names.length !== want.length || !want.every((s, i) => names[i] === s)) fail(`column "${c.name}" (${c.type}) must have sections ${want.join(", ")}, got ${names.join(", ")}`);
    const section = (name: string): Uint8Array => {
      const [offset, length] = c.sections[name]!;
      if (offset % ALIGNMENT !== 0) fail(`column "${c.name}" section ${name} at ${offset} is not ${ALIGNMENT}-byte aligned`);
      if (offset < end || offset + length > body.length) fail(`column "${c.name}" section ${name} [${offset}, +${length}) is outside the body or overlaps the previous section`);
      for (let i = end; i < offset; i++) if (body[i] !== 0) fail(`non-zero padding before column "${c.name}" section ${name}`);
      end = offset + length;
      return body.subarray(offset, offset + length);
    };
    columns.set(c.name, decodeColumn(c.name, c.type, section, rows, fail));
  }
  for (let i = end; i < body.length; i++) if (body[i] !== 0) fail("non-zero padding at the end of the body");
  return { rows, columns };
}

function u32View(bytes: Uint8Array): Uint32Array {
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function decodeColumn(
  name: string,
  type: FieldType,
  section: (name: string) => Uint8Array,
  rows: number,
  fail: (problem: string) => never,
): FilterColumn {
  const where = `column "${name}"`;
  const sized = (s: string, bytes: Uint8Array, want: number): Uint8Array => {
    if (bytes.length !== want) fail(`${where} section ${s} has ${bytes.length} bytes, expected ${want}`);
    return bytes;
  };
  const bitset = (s: string): RowBits => {
    const bits = u32View(sized(s, section(s), rowBitsWords(rows) * 4));
    for (let r = rows; r < bits.length * 32; r++) if (hasBit(bits, r)) fail(`${where} section ${s}: bit ${r} is set past the last row`);
    return bits;
  };
  const presence = bitset("presence");
  const dictionary = (): string[] => {
    const dictOffsetsBytes = section("dictOffsets");
    if (dictOffsetsBytes.length % 4 !== 0 || dictOffsetsBytes.length === 0) fail(`${where} dictOffsets has ${dictOffsetsBytes.length} bytes, not (entries + 1) × 4`);
    const offsets = u32View(dictOffsetsBytes);
    const blob = section("dictBytes");
    if (offsets[0] !== 0 || offsets[offsets.length - 1] !== blob.length) fail(`${where} dictOffsets must run from 0 to ${blob.length}`);
    const decoder = new TextDecoder("utf-8", { fatal: true });
    const entries: string[] = [];
    for (let i = 0; i + 1 < offsets.length; i++) {
      if (offsets[i + 1] < offsets[i]) fail(`${where} dictOffsets decrease at entry ${i}`);
      let s = "";
      try {
        s = decoder.decode(blob.subarray(offsets[i], offsets[i + 1]));
      } catch {
        fail(`${where} dictionary entry ${i} is not valid UTF-8`);
      }
      if (i > 0 && compareCodePoints(entries[i - 1]!, s) >= 0) fail(`${where} dictionary entry ${i} is not after entry ${i - 1} (entries must be sorted and distinct)`);
      entries.push(s);
    }
    return entries;
  };
  switch (type) {
    case "number": {
      const raw = sized("values", section("values"), rows * 8);
      const values = new Float64Array(raw.buffer, raw.byteOffset, rows);
      for (let r = 0; r < rows; r++) {
        const v = values[r];
        if (!Number.isFinite(v)) fail(`${where} row ${r} holds the non-finite number ${v}`);
        if (Object.is(v, -0) || (v !== 0 && !hasBit(presence, r))) fail(`${where} row ${r}: absent rows and zeros are stored as +0`);
      }
      return { type, presence, values };
    }
    case "boolean": {
      const values = bitset("values");
      for (let w = 0; w < values.length; w++) if ((values[w] & ~presence[w]) !== 0) fail(`${where}: a value bit is set for an absent row near row ${w * 32}`);
      return { type, presence, values };
    }
    case "string": {
      const dict = dictionary();
      const codes = u32View(sized("codes", section("codes"), rows * 4));
      for (let r = 0; r < rows; r++) {
        if (hasBit(presence, r) ? codes[r] >= dict.length : codes[r] !== 0) fail(`${where} row ${r} has code ${codes[r]} (dictionary of ${dict.length}; absent rows 0)`);
      }
      return { type, presence, dictionary: dict, codes };
    }
    case "string[]": {
      const dict = dictionary();
      const listOffsets = u32View(sized("listOffsets", section("listOffsets"), (rows + 1) * 4));
      const codesBytes = section("codes");
      if (listOffsets[0] !== 0 || listOffsets[rows] * 4 !== codesBytes.length) fail(`${where} listOffsets must run from 0 to the ${codesBytes.length / 4} codes`);
      const codes = u32View(codesBytes);
      for (let r = 0; r < rows; r++) {
        const start = listOffsets[r];
        const stop = listOffsets[r + 1];
        if (stop < start) fail(`${where} listOffsets decrease at row ${r}`);
        if (stop > start && !hasBit(presence, r)) fail(`${where} row ${r} is absent but has values`);
        for (let i = start; i < stop; i++) {
          if (codes[i] >= dict.length) fail(`${where} row ${r} has code ${codes[i]}, the dictionary has ${dict.length}`);
          if (i > start && codes[i] <= codes[i - 1]) fail(`${where} row ${r}'s codes are not strictly increasing`);
        }
      }
      return { type, presence, dictionary: dict, listOffsets, codes };
    }
  }
}
