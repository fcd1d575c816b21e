import { describe, expect, it } from "vitest";
import { randomDocument, randomSchema } from "../../test/support/random-filters.ts";
import type { FieldSchema } from "../filter/schema.ts";
import { seededRandom } from "../random.ts";
import { crc32 } from "./crc32.ts";
import { IndexFormatError } from "./errors.ts";
import { buildFilterColumns, decodeFilterColumns, encodeFilterColumns, type FilterColumns, rowFieldValues } from "./filter-columns.ts";

const schema: FieldSchema = { section: "string", year: "number", tags: "string[]", free: "boolean" };
const docs = [
  { section: "news", year: 2020, tags: ["ml", "ir", "ml"], free: true },
  { section: null, year: -0, tags: [], free: false, other: 1 },
  {},
  { section: "blog", year: 1999.5, tags: ["\u{1F600}", "\uFFFD"] },
  { section: "news", free: true },
];

/** Plain arrays, for comparing column sets. */
function plain(set: FilterColumns): unknown {
  return {
    rows: set.rows,
    columns: [...set.columns].map(([name, c]) => [name, Object.fromEntries(Object.entries(c).map(([k, v]) => [k, ArrayBuffer.isView(v) ? Array.from(v as Uint32Array) : v]))]),
  };
}

/** Re-encodes after `mutate` edits the header JSON, with fresh CRCs: the structural checks must catch it. */
function withHeader(bytes: Uint8Array, mutate: (header: any) => void, body?: (body: Uint8Array) => void): Uint8Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  const length = dv.getUint32(12, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(24, 24 + length)));
  const bodyStart = Math.ceil((24 + length) / 8) * 8;
  const oldBody = bytes.slice(bodyStart);
  mutate(header);
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = Math.ceil((24 + json.length) / 8) * 8;
  body?.(oldBody);
  const out = new Uint8Array(start + oldBody.length);
  out.set(bytes.subarray(0, 24));
  out.set(json, 24);
  out.set(oldBody, start);
  const odv = new DataView(out.buffer);
  odv.setUint32(12, json.length, true);
  odv.setUint32(16, crc32(json), true);
  odv.setUint32(20, crc32(out.subarray(start)), true);
  return out;
}

function decodeError(bytes: Uint8Array, options = {}): string {
  try {
    decodeFilterColumns(bytes, options);
  } catch (e) {
    expect(e).toBeInstanceOf(IndexFormatError);
    return (e as Error).message;
  }
  throw new Error("expected an IndexFormatError");
}

describe("buildFilterColumns", () => {
  it("lays out each type", () => {
    const set = buildFilterColumns(schema, docs);
    expect(set.rows).toBe(5);
    const section = set.columns.get("section")!;
    expect(section).toMatchObject({ type: "string", dictionary: ["blog", "news"] });
    expect(Array.from(section.presence)).toEqual([0b11001, 0]);
    expect(Array.from((section as { codes: Uint32Array }).codes)).toEqual([1, 0, 0, 0, 1]);
    const year = set.columns.get("year")!;
    expect(Array.from(year.presence)).toEqual([0b01011, 0]);
    expect(Array.from((year as { values: Float64Array }).values)).toEqual([2020, 0, 0, 1999.5, 0]);
    expect(Object.is((year as { values: Float64Array }).values[1], 0)).toBe(true);
    const tags = set.columns.get("tags") as { dictionary: string[]; listOffsets: Uint32Array; codes: Uint32Array; presence: Uint32Array };
    expect(tags.dictionary).toEqual(["ir", "ml", "\uFFFD", "\u{1F600}"]);
    expect(Array.from(tags.listOffsets)).toEqual([0, 2, 2, 2, 4, 4]);
    expect(Array.from(tags.codes)).toEqual([0, 1, 2, 3]);
    expect(Array.from(tags.presence)).toEqual([0b01011, 0]);
    const free = set.columns.get("free") as { values: Uint32Array; presence: Uint32Array };
    expect(Array.from(free.presence)).toEqual([0b10011, 0]);
    expect(Array.from(free.values)).toEqual([0b10001, 0]);
  });

  it("refuses a wrongly typed field, naming row and field", () => {
    expect(() => buildFilterColumns(schema, [{}, { year: "2020" }])).toThrow(`filter columns: row 1: field "year" is declared number, got "2020"`);
  });
});

describe("encode/decode", () => {
  it("round-trips, is 8-byte aligned and canonical", () => {
    const set = buildFilterColumns(schema, docs);
    const bytes = encodeFilterColumns(set);
    expect(bytes.length % 8).toBe(0);
    const decoded = decodeFilterColumns(bytes, { expectedRows: 5, expectedSchema: schema });
    expect(plain(decoded)).toEqual(plain(set));
    expect(encodeFilterColumns(decoded)).toEqual(bytes);
  });

  it("round-trips random schemas and documents, row counts around word edges, and empty sets", () => {
    const rand = seededRandom(5);
    for (const rows of [0, 1, 31, 32, 33, 63, 64, 65, 200]) {
      const s = randomSchema(rand);
      const set = buildFilterColumns(s, Array.from({ length: rows }, () => randomDocument(s, rand)));
      const bytes = encodeFilterColumns(set);
      expect(plain(decodeFilterColumns(bytes, { expectedRows: rows, expectedSchema: s }))).toEqual(plain(set));
    }
    const none = encodeFilterColumns(buildFilterColumns({}, docs));
    expect(decodeFilterColumns(none).columns.size).toBe(0);
  });

  it("rowFieldValues gives back each row's values, so a merge of selected rows rebuilds the same columns", () => {
    const set = buildFilterColumns(schema, docs);
    expect(rowFieldValues(set, 0)).toEqual({ section: "news", year: 2020, tags: ["ir", "ml"], free: true });
    expect(rowFieldValues(set, 1)).toEqual({ year: 0, tags: [], free: false });
    expect(rowFieldValues(set, 2)).toEqual({});
    expect(() => rowFieldValues(set, 5)).toThrow(RangeError);
    const rand = seededRandom(8);
    const s = randomSchema(rand);
    const many = Array.from({ length: 300 }, () => randomDocument(s, rand));
    const keep = many.map((_, i) => i).filter(() => rand() < 0.6);
    const source = decodeFilterColumns(encodeFilterColumns(buildFilterColumns(s, many)));
    const merged = buildFilterColumns(s, keep.map((r) => rowFieldValues(source, r)));
    expect(encodeFilterColumns(merged)).toEqual(encodeFilterColumns(buildFilterColumns(s, keep.map((r) => many[r]!))));
  });

  it("reads bytes that are not 8-byte aligned in their buffer", () => {
    const bytes = encodeFilterColumns(buildFilterColumns(schema, docs));
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    expect(plain(decodeFilterColumns(shifted.subarray(3)))).toEqual(plain(buildFilterColumns(schema, docs)));
  });
});

describe("corruption is detected", () => {
  const bytes = encodeFilterColumns(buildFilterColumns(schema, docs));

  it("every flipped byte is refused", () => {
    for (let i = 0; i < bytes.length; i++) {
      const bad = bytes.slice();
      bad[i] ^= 0x10;
      expect(() => decodeFilterColumns(bad), `byte ${i}`).toThrow(IndexFormatError);
    }
  });

  it("truncation, trailing bytes, magic, version", () => {
    expect(decodeError(bytes.subarray(0, 10))).toBe("filter columns: truncated: 10 bytes is shorter than the 24-byte preamble");
    expect(decodeError(bytes.subarray(0, bytes.length - 8))).toMatch(/size mismatch: header says \d+ bytes, got \d+ \(truncated\)/);
    const longer = new Uint8Array(bytes.length + 8);
    longer.set(bytes);
    expect(decodeError(longer)).toMatch(/size mismatch/);
    const magic = bytes.slice();
    magic[0] = 0x41;
    expect(decodeError(magic, { label: "k.hxf" })).toBe("filter columns k.hxf: bad magic: not a HYPXFCOL file");
    const version = bytes.slice();
    version[8] = 2;
    expect(decodeError(version)).toBe("filter columns: unsupported version 2 (this reader knows 1)");
  });

  it("CRCs", () => {
    const header = bytes.slice();
    header[30] ^= 1;
    expect(decodeError(header)).toBe("filter columns: header CRC-32 mismatch (corrupt object)");
    const body = bytes.slice();
    body[body.length - 20] ^= 1;
    expect(decodeError(body)).toBe("filter columns: body CRC-32 mismatch (corrupt object)");
  });

  it("expectations: rows and schema", () => {
    expect(decodeError(bytes, { expectedRows: 6 })).toBe("filter columns: covers 5 rows, the segment has 6");
    expect(decodeError(bytes, { expectedSchema: { ...schema, year: "string" } })).toContain("do not match the index's fields");
    expect(decodeError(bytes, { expectedSchema: { ...schema, extra: "number" } })).toContain("do not match the index's fields");
    const { section: _, ...fewer } = schema;
    expect(decodeError(bytes, { expectedSchema: fewer })).toContain("do not match the index's fields");
    expect(() => decodeFilterColumns(bytes, { expectedSchema: { free: "boolean", tags: "string[]", year: "number", section: "string" } })).not.toThrow();
  });

  it("structural problems behind valid CRCs", () => {
    expect(decodeError(withHeader(bytes, (h) => (h.rows = 4)))).toBe(`filter columns: column "section" section presence: bit 4 is set past the last row`);
    expect(decodeError(withHeader(bytes, (h) => (h.rows = 65)))).toBe(`filter columns: column "section" section presence has 8 bytes, expected 16`);
    expect(decodeError(withHeader(bytes, (h) => (h.columns[0].type = "number")))).toBe(
      `filter columns: column "section" (number) must have sections presence, values, got presence, dictOffsets, dictBytes, codes`,
    );
    expect(decodeError(withHeader(bytes, (h) => (h.columns[1].sections.values[0] += 4)))).toMatch(/column "year" section values at \d+ is not 8-byte aligned/);
    expect(decodeError(withHeader(bytes, (h) => (h.columns[1].sections.values[0] -= 8)))).toMatch(/column "year" section values .* overlaps the previous section/);
    expect(decodeError(withHeader(bytes, (h) => h.columns.push(h.columns[0])))).toBe(`filter columns: column "section" appears twice`);
    expect(decodeError(withHeader(bytes, (h) => (h.columns[0].name = "")))).toMatch(/bad header/);
  });

  it("content problems behind valid CRCs", () => {
    const sectionAt = (name: string, section: string): number => {
      const length = new DataView(bytes.buffer).getUint32(12, true);
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(24, 24 + length)));
      return header.columns.find((c: { name: string }) => c.name === name).sections[section][0];
    };
    const patch = (name: string, section: string, edit: (body: Uint8Array, at: number) => void) =>
      withHeader(bytes, () => {}, (body) => edit(body, sectionAt(name, section)));
    // section codes: row 2 is absent but coded 1.
    expect(decodeError(patch("section", "codes", (b, at) => (b[at + 8] = 1)))).toBe(`filter columns: column "section" row 2 has code 1 (dictionary of 2; absent rows 0)`);
    expect(decodeError(patch("section", "codes", (b, at) => (b[at] = 9)))).toBe(`filter columns: column "section" row 0 has code 9 (dictionary of 2; absent rows 0)`);
    expect(decodeError(patch("section", "presence", (b, at) => (b[at] |= 0x80)))).toBe(`filter columns: column "section" section presence: bit 7 is set past the last row`);
    expect(decodeError(patch("section", "dictBytes", (b, at) => (b[at] = 0x6f)))).toBe(`filter columns: column "section" dictionary entry 1 is not after entry 0 (entries must be sorted and distinct)`);
    expect(decodeError(patch("section", "dictBytes", (b, at) => (b[at] = 0xff)))).toBe(`filter columns: column "section" dictionary entry 0 is not valid UTF-8`);
    expect(decodeError(patch("year", "values", (b, at) => (b[at + 8 * 2 + 7] = 0x3f)))).toBe(`filter columns: column "year" row 2: absent rows and zeros are stored as +0`);
    expect(decodeError(patch("year", "values", (b, at) => (b[at + 8 * 1 + 7] = 0x80)))).toBe(`filter columns: column "year" row 1: absent rows and zeros are stored as +0`);
    expect(decodeError(patch("year", "values", (b, at) => b.set([0, 0, 0, 0, 0, 0, 0xf0, 0x7f], at)))).toBe(`filter columns: column "year" row 0 holds the non-finite number Infinity`);
    expect(decodeError(patch("free", "values", (b, at) => (b[at] |= 0b100)))).toBe(`filter columns: column "free": a value bit is set for an absent row near row 0`);
    expect(decodeError(patch("tags", "codes", (b, at) => (b[at] = 1)))).toBe(`filter columns: column "tags" row 0's codes are not strictly increasing`);
    expect(decodeError(patch("tags", "codes", (b, at) => (b[at + 4] = 7)))).toBe(`filter columns: column "tags" row 0 has code 7, the dictionary has 4`);
    expect(decodeError(patch("tags", "listOffsets", (b, at) => (b[at + 4] = 3)))).toBe(`filter columns: column "tags" listOffsets decrease at row 1`);
  });
});
