/// <reference path="../qnet/msgpackr-no-eval.d.ts" />
/**
 * The shard file (`.hxs`), index format version 1: one independently searchable segment
 * of an index: embeddings, a kNN graph over them (local row numbers) and the documents'
 * ids and stored fields. Documented for other languages in shared/FORMATS.md
 * ("Index format, version 1"); this file is the reference implementation.
 *
 * Every section starts on a 64-byte boundary so a reader can view it as a typed array
 * without copying, and both the header and the body carry CRC-32s, so a shard read without
 * its manifest is still verified. A shard that fails any check is refused, never served.
 *
 * msgpackr comes from "index-no-eval" (workerd forbids new Function); see shared/qnet/wire.ts.
 */
import { Packr, Unpackr } from "msgpackr/index-no-eval";
import { unpackOneValue } from "../msgpack-one.ts";
import * as z from "zod";
import { float32ArrayToHalf } from "../qnet/half.ts";
import { portableChecksums, type ShardChecksums } from "./checksums.ts";
import { IndexFormatError } from "./errors.ts";
import { parseProxyIndexSection } from "./proxy-index-section.ts";

export const SHARD_MAGIC = "HYPXSHRD";
export const SHARD_FORMAT_VERSION = 1;
export const SHARD_FILE_EXTENSION = ".hxs";
/** Section alignment: a cache line, and a multiple of every element size we view. */
export const SHARD_ALIGNMENT = 64;
/** magic (8) + version u32 + header length u32 + header CRC-32 u32 + reserved u32. */
export const SHARD_PREAMBLE_BYTES = 24;
/** Offsets are u32 and JS typed arrays index by number: keep shards under 4 GiB. */
export const SHARD_MAX_BYTES = 2 ** 32 - 1;
/** A header is a few hundred bytes; the cap stops a corrupt length from allocating wildly. */
const MAX_HEADER_BYTES = 1 << 20;

export const SHARD_DTYPES = ["float16", "float32"] as const;
export type ShardDtype = (typeof SHARD_DTYPES)[number];

/** Section names, in the order they appear in the file. */
export const SHARD_SECTIONS = ["embeddings", "graphOffsets", "graphNeighbors", "ids", "fieldIndex", "fields"] as const;
export type ShardSectionName = (typeof SHARD_SECTIONS)[number];
/**
 * Sections a version-1 file may have after the required ones (added within version 1: readers
 * that predate one ignore it, as they ignore unknown header keys).
 */
export const OPTIONAL_SHARD_SECTIONS = ["entryRows", "filterColumns", "proxyIndex"] as const;
export type OptionalShardSectionName = (typeof OPTIONAL_SHARD_SECTIONS)[number];
type AnySectionName = ShardSectionName | OptionalShardSectionName;

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const MAGIC_BYTES = new TextEncoder().encode(SHARD_MAGIC);

// Plain msgpack (no records, no extensions) so any language's msgpack library reads it.
const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false });

export interface ShardGraph {
  /** CSR row starts: node i's neighbours are neighbors[offsets[i] .. offsets[i+1]). */
  offsets: Uint32Array;
  /** Local row numbers within the shard, each < docCount. */
  neighbors: Uint32Array;
  /** The graph's maximum out-degree; no row may have more neighbours. */
  degree: number;
}

export interface ShardInput {
  ids: string[];
  /** Stored fields per document (JSON-like values, e.g. {text, title, metadata}). */
  fields: Record<string, unknown>[];
  /** docCount × dim, row-major; rounded to half precision when dtype is "float16". */
  embeddings: Float32Array;
  dim: number;
  dtype: ShardDtype;
  graph: ShardGraph;
  /**
   * Rows graph search should score first (k-means medoids chosen at build time): distinct, each
   * < docCount. Omitted or empty: no entryRows section.
   */
  entryRows?: Uint32Array;
  /**
   * The shard's filter columns, encoded (filter-columns.ts encodeFilterColumns: the `.hxf` bytes,
   * one row per document). Omitted or empty: no filterColumns section (every declared field is
   * absent in this shard).
   */
  filterColumns?: Uint8Array;
  /**
   * The inner-product HNSW graph over the embeddings (proxy-index-section.ts; built by
   * gpu-worker/src/index/build/proxy-index.ts). Omitted or empty: no proxyIndex section (the
   * reader brute-forces the inner products).
   */
  proxyIndex?: Uint8Array;
}

export interface DecodedShard {
  docCount: number;
  dim: number;
  dtype: ShardDtype;
  degree: number;
  /** Views into the shard bytes (no copy): Float32Array for float32, IEEE half bits for float16. */
  embeddings: Float32Array | Uint16Array;
  offsets: Uint32Array;
  neighbors: Uint32Array;
  /** Build-time entry rows for graph search (a view); empty when the shard has none. */
  entryRows: Uint32Array;
  /**
   * The filter columns' `.hxf` bytes (a view; covered by the shard's body CRC and sha256), decoded
   * by the reader with decodeFilterColumns; empty when the shard has none.
   */
  filterColumns: Uint8Array;
  /**
   * The proxyIndex section (a view), already checked node by node against this shard
   * (proxy-index-section.ts); opened by gpu-worker/src/index/proxy-index-reader.ts. Empty when
   * the shard has none.
   */
  proxyIndex: Uint8Array;
  ids: string[];
  /** Document i's stored fields, decoded on demand (each call decodes afresh). */
  fields(i: number): Record<string, unknown>;
  /** Size of the whole shard file. */
  byteLength: number;
}

/** What the manifest says about a shard; every given value is checked. */
export interface ShardExpectation {
  bytes?: number;
  /** Lowercase hex SHA-256 of the whole file. */
  sha256?: string;
}

export interface DecodeShardOptions {
  /** Names the shard (a key or path) in error messages. */
  label?: string;
  /** Faster host implementations (node:zlib, node:crypto); defaults to portable pure JS. */
  checksums?: ShardChecksums;
  /**
   * The caller has already checked these exact bytes against a sha256 it trusts (e.g. the
   * shard cache hashes while downloading), so the body CRC pass would only repeat that work.
   * The header CRC and all structural checks still run.
   */
  contentVerified?: boolean;
}

const sectionSchema = z.object({
  offset: z.number().int().nonnegative(),
  length: z.number().int().nonnegative(),
});

const nonNegativeInt = z.number().int().nonnegative();

/** The header JSON. Unknown keys are ignored so optional fields can be added within version 1. */
export const shardHeaderSchema = z.object({
  docCount: nonNegativeInt,
  dim: z.number().int().positive(),
  dtype: z.enum(SHARD_DTYPES),
  degree: nonNegativeInt,
  /** Total file size; a shorter file is truncated, a longer one has trailing garbage. */
  bytes: z.number().int().positive().max(SHARD_MAX_BYTES),
  /** CRC-32 of every byte after the header JSON (padding included) to the end of the file. */
  bodyCrc32: z.number().int().nonnegative().max(0xffffffff),
  sections: z.object({
    ...(Object.fromEntries(SHARD_SECTIONS.map((s) => [s, sectionSchema])) as Record<ShardSectionName, typeof sectionSchema>),
    ...(Object.fromEntries(OPTIONAL_SHARD_SECTIONS.map((s) => [s, sectionSchema.optional()])) as Record<
      OptionalShardSectionName,
      z.ZodOptional<typeof sectionSchema>
    >),
  }),
});
export type ShardHeader = z.infer<typeof shardHeaderSchema>;

const align = (n: number): number => Math.ceil(n / SHARD_ALIGNMENT) * SHARD_ALIGNMENT;
const bytesPerValue = (dtype: ShardDtype): number => (dtype === "float16" ? 2 : 4);

function assertLittleEndian(): void {
  if (!HOST_IS_LITTLE_ENDIAN) throw new IndexFormatError("the shard format needs a little-endian host");
}

/** Checks a CSR graph over `docCount` nodes; returns the first problem, or undefined. */
function graphProblem(offsets: Uint32Array, neighbors: Uint32Array, docCount: number, degree: number): string | undefined {
  if (offsets.length !== docCount + 1) return `graph offsets has ${offsets.length} entries, expected docCount + 1 = ${docCount + 1}`;
  if (offsets[0] !== 0) return `graph offsets[0] is ${offsets[0]}, expected 0`;
  for (let i = 0; i < docCount; i++) {
    const n = offsets[i + 1] - offsets[i];
    if (n < 0) return `graph offsets decrease at row ${i}`;
    if (n > degree) return `graph row ${i} has ${n} neighbours, more than degree ${degree}`;
  }
  if (offsets[docCount] !== neighbors.length) {
    return `graph offsets end at ${offsets[docCount]} but there are ${neighbors.length} neighbours`;
  }
  for (let j = 0; j < neighbors.length; j++) {
    if (neighbors[j] >= docCount) return `graph neighbour ${j} is row ${neighbors[j]}, not below docCount ${docCount}`;
  }
  return undefined;
}

/** A msgpack array header for n elements (fixarray / array16 / array32). */
function msgpackArrayHeader(n: number): Uint8Array {
  if (n < 16) return Uint8Array.of(0x90 | n);
  if (n < 0x10000) return Uint8Array.of(0xdc, n >>> 8, n & 0xff);
  return Uint8Array.of(0xdd, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/** msgpackr packs into a reused buffer; copy so the result owns exactly its bytes. */
function packCopy(value: unknown): Uint8Array {
  return new Uint8Array(packr.pack(value));
}

function isPlainRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/** Validates the input and returns docCount; throws IndexFormatError naming the problem. */
function validateInput(input: ShardInput): number {
  const { ids, fields, embeddings, dim, dtype, graph } = input;
  if (!(SHARD_DTYPES as readonly string[]).includes(dtype)) throw new IndexFormatError(`shard: unknown dtype ${JSON.stringify(dtype)}`);
  if (!Number.isInteger(dim) || dim < 1) throw new IndexFormatError(`shard: dim must be a positive integer, got ${dim}`);
  if (!Number.isInteger(graph.degree) || graph.degree < 0) throw new IndexFormatError(`shard: degree must be a non-negative integer, got ${graph.degree}`);
  const docCount = ids.length;
  if (fields.length !== docCount) throw new IndexFormatError(`shard: ${docCount} ids but ${fields.length} field objects`);
  if (embeddings.length !== docCount * dim) {
    throw new IndexFormatError(`shard: embeddings has ${embeddings.length} values, expected docCount × dim = ${docCount} × ${dim}`);
  }
  const seen = new Set<string>();
  for (const [i, id] of ids.entries()) {
    if (typeof id !== "string" || id.length === 0) throw new IndexFormatError(`shard: id ${i} is not a non-empty string`);
    if (seen.has(id)) throw new IndexFormatError(`shard: duplicate document id ${JSON.stringify(id)}`);
    seen.add(id);
  }
  for (const [i, f] of fields.entries()) {
    if (!isPlainRecord(f)) throw new IndexFormatError(`shard: fields[${i}] is not an object`);
  }
  const problem = graphProblem(graph.offsets, graph.neighbors, docCount, graph.degree);
  if (problem) throw new IndexFormatError(`shard: ${problem}`);
  const entryProblem = input.entryRows && entryRowsProblem(input.entryRows, docCount);
  if (entryProblem) throw new IndexFormatError(`shard: ${entryProblem}`);
  if (input.proxyIndex && input.proxyIndex.length > 0) {
    const layout = parseProxyIndexSection(input.proxyIndex, docCount, dim);
    if (typeof layout === "string") throw new IndexFormatError(`shard: ${layout}`);
  }
  return docCount;
}

/** Entry rows must be distinct rows of the shard; returns the first problem, or undefined. */
function entryRowsProblem(rows: Uint32Array, docCount: number): string | undefined {
  const seen = new Set<number>();
  for (let i = 0; i < rows.length; i++) {
    if (rows[i] >= docCount) return `entry row ${i} is row ${rows[i]}, not below docCount ${docCount}`;
    if (seen.has(rows[i])) return `entry row ${i} repeats row ${rows[i]}`;
    seen.add(rows[i]);
  }
  return undefined;
}

/** Writes a shard file. Throws IndexFormatError for inconsistent input. */
export function encodeShard(input: ShardInput, options: { checksums?: ShardChecksums } = {}): Uint8Array {
  assertLittleEndian();
  const docCount = validateInput(input);
  const checksums = options.checksums ?? portableChecksums;
  const { dtype, dim, graph } = input;

  const embeddingBytes =
    dtype === "float16" ? float32ArrayToHalf(input.embeddings) : input.embeddings;
  const idsBytes = packCopy(input.ids);
  // The fields section is one msgpack array whose elements are packed one by one, so the
  // fieldIndex can point at each document's map for lazy decoding.
  const arrayHeader = msgpackArrayHeader(docCount);
  const packedFields = input.fields.map(packCopy);
  const fieldIndex = new Uint32Array(docCount + 1);
  fieldIndex[0] = arrayHeader.length;
  for (let i = 0; i < docCount; i++) fieldIndex[i + 1] = fieldIndex[i] + packedFields[i].length;

  const entryRows = input.entryRows ?? new Uint32Array(0);
  const payloads: Record<AnySectionName, Uint8Array[]> = {
    embeddings: [new Uint8Array(embeddingBytes.buffer, embeddingBytes.byteOffset, embeddingBytes.byteLength)],
    graphOffsets: [new Uint8Array(graph.offsets.buffer, graph.offsets.byteOffset, graph.offsets.byteLength)],
    graphNeighbors: [new Uint8Array(graph.neighbors.buffer, graph.neighbors.byteOffset, graph.neighbors.byteLength)],
    ids: [idsBytes],
    fieldIndex: [new Uint8Array(fieldIndex.buffer)],
    fields: [arrayHeader, ...packedFields],
    entryRows: [new Uint8Array(entryRows.buffer, entryRows.byteOffset, entryRows.byteLength)],
    filterColumns: [input.filterColumns ?? new Uint8Array(0)],
    proxyIndex: [input.proxyIndex ?? new Uint8Array(0)],
  };
  // Optional sections are written only when they have content, so a shard without them is
  // byte-for-byte what a reader that predates them expects.
  const present: AnySectionName[] = [...SHARD_SECTIONS, ...OPTIONAL_SHARD_SECTIONS.filter((s) => payloads[s][0]!.length > 0)];
  const lengths = Object.fromEntries(present.map((s) => [s, payloads[s].reduce((n, p) => n + p.length, 0)])) as Record<AnySectionName, number>;

  // The header's size depends on the offsets it lists and vice versa: lay the sections out
  // after a header of the current size until the size stops changing (two rounds at most).
  // Typed wide: TextEncoder.encode returns Uint8Array<ArrayBufferLike> under @cloudflare/workers-types (the edge imports this file via keys.ts).
  let headerJson: Uint8Array = new Uint8Array(0);
  let header: ShardHeader | undefined;
  for (let round = 0; ; round++) {
    if (round === 4) throw new Error("encodeShard: header layout did not converge (bug)");
    let at = align(SHARD_PREAMBLE_BYTES + headerJson.length);
    const sections = {} as ShardHeader["sections"];
    for (const s of present) {
      at = align(at);
      sections[s] = { offset: at, length: lengths[s] };
      at += lengths[s];
    }
    if (at > SHARD_MAX_BYTES) throw new IndexFormatError(`shard: ${at} bytes is over the ${SHARD_MAX_BYTES}-byte shard limit; use more shards`);
    // bodyCrc32 is a placeholder of the widest form so filling it in cannot change the size.
    header = { docCount, dim, dtype, degree: graph.degree, bytes: at, bodyCrc32: 0xffffffff, sections };
    const next = new TextEncoder().encode(JSON.stringify(header));
    if (next.length === headerJson.length) break;
    headerJson = next;
  }

  const out = new Uint8Array(header.bytes);
  for (const s of present) {
    let at = header.sections[s]!.offset;
    for (const p of payloads[s]) {
      out.set(p, at);
      at += p.length;
    }
  }
  const bodyStart = SHARD_PREAMBLE_BYTES + headerJson.length;
  header.bodyCrc32 = checksums.crc32(out.subarray(bodyStart));
  // Pad the final JSON with spaces to exactly the placeholder's length (JSON allows trailing
  // whitespace), so the layout computed above stays valid.
  const finalJson = new TextEncoder().encode(JSON.stringify(header).padEnd(headerJson.length, " "));
  out.set(MAGIC_BYTES, 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, SHARD_FORMAT_VERSION, true);
  view.setUint32(12, finalJson.length, true);
  view.setUint32(16, checksums.crc32(finalJson), true);
  view.setUint32(20, 0, true);
  out.set(finalJson, SHARD_PREAMBLE_BYTES);
  return out;
}

/**
 * Verifies and opens a shard. Checks, in order: expected size, expected sha256, magic,
 * format version, header length, header CRC, header JSON and schema, file size, section
 * bounds and alignment, body CRC, graph structure and id list. Any failure throws an
 * IndexFormatError that says what is wrong; nothing is returned for a bad shard.
 *
 * The typed arrays are views into `bytes` (no copy), so keep `bytes` unchanged while the
 * shard is in use. If `bytes` does not start 64-byte aligned in its buffer it is copied once.
 */
export function decodeShard(bytes: Uint8Array, expected: ShardExpectation = {}, options: DecodeShardOptions = {}): DecodedShard {
  assertLittleEndian();
  const name = options.label ? `shard ${options.label}` : "shard";
  // Annotated (not inferred) so TypeScript treats calls as ending control flow.
  const fail: (msg: string) => never = (msg) => {
    throw new IndexFormatError(`${name}: ${msg}`);
  };
  const checksums = options.checksums ?? portableChecksums;
  if (!(bytes instanceof Uint8Array)) fail("expected the bytes as a Uint8Array");

  if (expected.bytes !== undefined && bytes.length !== expected.bytes) {
    fail(`size mismatch: expected ${expected.bytes} bytes, got ${bytes.length}${bytes.length < expected.bytes ? " (truncated)" : ""}`);
  }
  if (expected.sha256 !== undefined) {
    const actual = checksums.sha256Hex(bytes);
    if (actual !== expected.sha256.toLowerCase()) fail(`sha256 mismatch: expected ${expected.sha256}, got ${actual} (corrupt or replaced)`);
  }

  if (bytes.length < SHARD_PREAMBLE_BYTES) fail(`truncated: ${bytes.length} bytes is shorter than the ${SHARD_PREAMBLE_BYTES}-byte preamble`);
  for (let i = 0; i < MAGIC_BYTES.length; i++) {
    if (bytes[i] !== MAGIC_BYTES[i]) fail(`bad magic: not a ${SHARD_MAGIC} shard file`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== SHARD_FORMAT_VERSION) {
    fail(`unsupported shard format version ${version}; this reader reads version ${SHARD_FORMAT_VERSION}`);
  }
  const headerLength = view.getUint32(12, true);
  if (headerLength === 0 || headerLength > MAX_HEADER_BYTES) fail(`implausible header length ${headerLength}`);
  if (SHARD_PREAMBLE_BYTES + headerLength > bytes.length) {
    fail(`truncated: the ${headerLength}-byte header runs past the end of the ${bytes.length}-byte file`);
  }
  if (view.getUint32(20, true) !== 0) fail("reserved preamble field is not zero");
  const headerBytes = bytes.subarray(SHARD_PREAMBLE_BYTES, SHARD_PREAMBLE_BYTES + headerLength);
  if (checksums.crc32(headerBytes) !== view.getUint32(16, true)) fail("header CRC-32 mismatch (corrupt header)");

  let headerValue: unknown;
  try {
    headerValue = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(headerBytes));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  const parsed = shardHeaderSchema.safeParse(headerValue);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    fail(`bad header: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  const header = parsed.data;
  const { docCount, dim, dtype, degree, sections } = header;

  if (bytes.length < header.bytes) fail(`truncated: header says ${header.bytes} bytes, got ${bytes.length}`);
  if (bytes.length > header.bytes) fail(`${bytes.length - header.bytes} unexpected bytes after the end (header says ${header.bytes} bytes)`);

  const bodyStart = SHARD_PREAMBLE_BYTES + headerLength;
  const expectedLengths: Partial<Record<AnySectionName, number>> = {
    embeddings: docCount * dim * bytesPerValue(dtype),
    graphOffsets: (docCount + 1) * 4,
    fieldIndex: (docCount + 1) * 4,
  };
  let previousEnd = bodyStart;
  const present: AnySectionName[] = [...SHARD_SECTIONS, ...OPTIONAL_SHARD_SECTIONS.filter((s) => sections[s] !== undefined)];
  for (const s of present) {
    const { offset, length } = sections[s]!;
    if (offset % SHARD_ALIGNMENT !== 0) fail(`section ${s} offset ${offset} is not ${SHARD_ALIGNMENT}-byte aligned`);
    if (offset < previousEnd) fail(`section ${s} at ${offset} overlaps the data before it (which ends at ${previousEnd})`);
    if (offset + length > header.bytes) fail(`section ${s} (${offset} + ${length}) is out of bounds of the ${header.bytes}-byte file`);
    const want = expectedLengths[s];
    if (want !== undefined && length !== want) fail(`section ${s} is ${length} bytes, expected ${want}`);
    previousEnd = offset + length;
  }
  for (const s of ["graphNeighbors", "entryRows"] as const) {
    const length = sections[s]?.length ?? 0;
    if (length % 4 !== 0) fail(`section ${s} is ${length} bytes, not a whole number of u32`);
  }

  if (!options.contentVerified && checksums.crc32(bytes.subarray(bodyStart)) !== header.bodyCrc32) {
    fail("body CRC-32 mismatch (corrupt data)");
  }

  // Typed-array views need their element alignment relative to the ArrayBuffer; sections
  // are 64-aligned within the file, so only a misaligned `bytes` needs one copy.
  const base = bytes.byteOffset % SHARD_ALIGNMENT === 0 ? bytes : bytes.slice();
  const section = (s: AnySectionName): Uint8Array => {
    const where = sections[s] ?? { offset: 0, length: 0 };
    return base.subarray(where.offset, where.offset + where.length);
  };
  const u32 = (s: AnySectionName): Uint32Array => {
    const b = section(s);
    return new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  };
  const emb = section("embeddings");
  const embeddings =
    dtype === "float16"
      ? new Uint16Array(emb.buffer, emb.byteOffset, docCount * dim)
      : new Float32Array(emb.buffer, emb.byteOffset, docCount * dim);
  const offsets = u32("graphOffsets");
  const neighbors = u32("graphNeighbors");
  const problem = graphProblem(offsets, neighbors, docCount, degree);
  if (problem) fail(problem);
  const entryRows = u32("entryRows");
  const entryProblem = entryRowsProblem(entryRows, docCount);
  if (entryProblem) fail(entryProblem);

  const ids = unpackSection(section("ids"), "ids", fail);
  if (!Array.isArray(ids) || ids.length !== docCount || !ids.every((id) => typeof id === "string")) {
    fail(`section ids is not an array of ${docCount} strings`);
  }

  const fieldIndex = u32("fieldIndex");
  const fieldsBytes = section("fields");
  if (fieldIndex[docCount] !== fieldsBytes.length) fail(`fieldIndex ends at ${fieldIndex[docCount]}, but the fields section is ${fieldsBytes.length} bytes`);
  for (let i = 0; i < docCount; i++) {
    if (fieldIndex[i + 1] <= fieldIndex[i]) fail(`fieldIndex is not increasing at document ${i}`);
  }
  if (docCount > 0 && fieldIndex[0] !== msgpackArrayHeader(docCount).length) fail("fields section does not start with a msgpack array header");

  const fields = (i: number): Record<string, unknown> => {
    if (!Number.isInteger(i) || i < 0 || i >= docCount) {
      throw new RangeError(`${name}: document ${i} is out of range 0..${docCount - 1}`);
    }
    const value = unpackSection(fieldsBytes.subarray(fieldIndex[i], fieldIndex[i + 1]), `fields[${i}]`, fail);
    if (!isPlainRecord(value)) fail(`fields[${i}] is not a map`);
    return value as Record<string, unknown>;
  };

  const filterColumns = section("filterColumns");
  const proxyIndex = section("proxyIndex");
  if (proxyIndex.length > 0) {
    const layout = parseProxyIndexSection(proxyIndex, docCount, dim);
    if (typeof layout === "string") fail(layout);
  }
  return { docCount, dim, dtype, degree, embeddings, offsets, neighbors, entryRows, filterColumns, proxyIndex, ids: ids as string[], fields, byteLength: bytes.length };
}

/** Unpacks exactly one msgpack value; anything else is a format error. */
function unpackSection(bytes: Uint8Array, what: string, fail: (msg: string) => never): unknown {
  const one = unpackOneValue(unpackr, bytes);
  if (one.ok) return one.value;
  if (one.problem === "invalid") fail(`${what}: invalid msgpack: ${one.message}`);
  return fail(`${what}: expected exactly one msgpack value, found ${one.problem === "empty" ? "none" : "trailing bytes"}`);
}
