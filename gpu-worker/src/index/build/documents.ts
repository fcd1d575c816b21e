/**
 * The documents of a build, read from its inputs in order: JSONL (`{"id","text",...fields}`,
 * optionally gzip) or prebuilt embeddings (a float32 .npy matrix plus a JSONL ids file with one
 * `{"id",...fields}` line per row). Every problem is a BuildInputError that names the input key and
 * line. The build reads its inputs twice: once to validate and plan shards (`withEmbeddings: false`
 * skips the matrices' data), then again to encode and write, so the source is a restartable
 * generator rather than a list held in memory.
 */
import type { BuildInput } from "../../../../shared/api/worker-api.ts";
import type { BlobStore } from "../../store/blob-store.ts";
import { ByteReader } from "./byte-reader.ts";
import { BuildInputError } from "./errors.ts";
import { type InputMeter, openInput, readLines } from "./input-stream.ts";
import { NpyFormatError, readNpyHeader, type NpyHeader } from "./npy.ts";
import { checkDocumentFields, fieldValue, type FieldSchema } from "../../../../shared/filter/schema.ts";

/** The build request's documented text limit. */
export const MAX_TEXT_CHARS = 1_000_000;
/** Rerank-by-id requests carry ids of at most 512 characters, so a longer id could never be asked for. */
export const MAX_ID_CHARS = 512;
/** Matrix rows read at a time. */
const NPY_BLOCK_ROWS = 256;

export interface SourceDocument {
  id: string;
  /** The text to encode; undefined when the embedding came prebuilt. */
  text?: string;
  /** The prebuilt embedding row (npy inputs read withEmbeddings). */
  embedding?: Float32Array;
  /** The stored fields (storeFields that the document has). */
  fields: Record<string, unknown>;
  /** The declared filterable fields the document has (checked against `filterFields`), for the shard's filter columns. */
  filterValues: Record<string, unknown>;
  /** The input's position in the request, its key (the ids file for npy) and the 1-based line. */
  input: number;
  key: string;
  line: number;
}

export interface ReadDocumentsOptions {
  storeFields: readonly string[];
  /** The index's declared filterable fields: each line's values are checked against them. */
  filterFields?: FieldSchema;
  embeddingDim: number;
  /** Read .npy rows; false only checks the header and the object's size. */
  withEmbeddings: boolean;
  /** Counts this pass's bytes against the build's limits and checks its abort signal; unmetered when omitted. */
  meter?: InputMeter;
}

export async function* readDocuments(
  store: BlobStore,
  inputs: readonly BuildInput[],
  options: ReadDocumentsOptions,
): AsyncGenerator<SourceDocument> {
  for (const [index, input] of inputs.entries()) {
    if (input.format === "jsonl") yield* readJsonlDocuments(store, input.key, index, options);
    else yield* readNpyDocuments(store, input.key, input.idsKey, index, options);
  }
}

async function* readJsonlDocuments(store: BlobStore, key: string, input: number, options: ReadDocumentsOptions): AsyncGenerator<SourceDocument> {
  for await (const { text, line } of readLines((await openInput(store, key, options.meter)).chunks, key)) {
    if (text.trim() === "") continue;
    const where = `input ${key} line ${line}`;
    const record = parseRecord(text, where);
    yield {
      id: parseId(record, where),
      text: parseText(record, where),
      fields: pickFields(record, options.storeFields),
      filterValues: filterValues(record, options.filterFields, where),
      input,
      key,
      line,
    };
  }
}

async function* readNpyDocuments(
  store: BlobStore,
  key: string,
  idsKey: string,
  input: number,
  options: ReadDocumentsOptions,
): AsyncGenerator<SourceDocument> {
  const dim = options.embeddingDim;
  const opened = await openInput(store, key, options.meter);
  const matrix = new ByteReader(opened.chunks);
  try {
    const header = await readNpyHeaderNamed(matrix, key);
    const rows = checkNpyHeader(header, key, dim);
    if (!options.withEmbeddings) {
      await matrix.close();
      // A compressed matrix's size says nothing; the reading pass checks it row by row instead.
      if (!opened.gzip) await checkNpySize(store, key, header.dataOffset + rows * dim * 4);
    }
    let row = 0;
    // Rows come in blocks: one read per row costs more than the parsing (~45 µs vs ~5 µs per 768-d row).
    let block: Float32Array = new Float32Array(0);
    let blockStart = 0;
    for await (const { text, line } of readLines((await openInput(store, idsKey, options.meter)).chunks, idsKey)) {
      if (text.trim() === "") continue;
      const where = `input ${idsKey} line ${line}`;
      if (row === rows) throw new BuildInputError(`${where}: more ids than the ${rows} rows of ${key}`);
      const record = parseRecord(text, where);
      const doc: SourceDocument = {
        id: parseId(record, where),
        fields: pickFields(record, options.storeFields),
        filterValues: filterValues(record, options.filterFields, where),
        input,
        key: idsKey,
        line,
      };
      if (options.withEmbeddings) {
        if (row - blockStart >= block.length / dim) {
          blockStart = row;
          block = await readRows(matrix, key, row, Math.min(NPY_BLOCK_ROWS, rows - row), dim);
        }
        doc.embedding = block.subarray((row - blockStart) * dim, (row - blockStart + 1) * dim);
      }
      row++;
      yield doc;
    }
    if (row !== rows) throw new BuildInputError(`input ${idsKey}: ${row} ids, but ${key} has ${rows} rows`);
    if (options.withEmbeddings && !(await matrix.atEnd())) throw new BuildInputError(`input ${key}: unexpected bytes after the ${rows} × ${dim} float32 rows`);
  } finally {
    await matrix.close();
  }
}

async function readNpyHeaderNamed(reader: ByteReader, key: string): Promise<NpyHeader> {
  try {
    return await readNpyHeader(reader);
  } catch (e) {
    if (e instanceof NpyFormatError) throw new BuildInputError(`input ${key}: ${e.message}`);
    throw e;
  }
}

/** Returns the row count; refuses anything but a C-order little-endian float32 [rows, dim] matrix. */
function checkNpyHeader(header: NpyHeader, key: string, dim: number): number {
  if (header.descr !== "<f4") throw new BuildInputError(`input ${key}: dtype ${JSON.stringify(header.descr)} is not supported; expected float32 ("<f4")`);
  if (header.fortranOrder) throw new BuildInputError(`input ${key}: fortran_order matrices are not supported; save it in C order (numpy.ascontiguousarray)`);
  if (header.shape.length !== 2) throw new BuildInputError(`input ${key}: shape (${header.shape.join(", ")}) is not a 2-D [documents, ${dim}] matrix`);
  if (header.shape[1] !== dim) throw new BuildInputError(`input ${key}: embedding dimension ${header.shape[1]} does not match the model's ${dim}`);
  return header.shape[0];
}

/** The validation pass skips the data, so it checks the size instead: truncation fails before any encoding. */
async function checkNpySize(store: BlobStore, key: string, expected: number): Promise<void> {
  const head = await store.head(key);
  if (!head) throw new BuildInputError(`input ${key}: not found`);
  if (head.bytes !== expected) {
    throw new BuildInputError(`input ${key}: ${head.bytes} bytes, but its header's shape needs ${expected}${head.bytes < expected ? " (truncated)" : ""}`);
  }
}

/** Rows [first, first + count) of the matrix, checked to be finite. */
async function readRows(reader: ByteReader, key: string, first: number, count: number, dim: number): Promise<Float32Array> {
  const bytes = await reader.read(count * dim * 4);
  if (bytes.length < count * dim * 4) throw new BuildInputError(`input ${key}: truncated at row ${first + Math.floor(bytes.length / (dim * 4))}`);
  // ByteReader returns a fresh, aligned buffer.
  const values = new Float32Array(bytes.buffer, bytes.byteOffset, count * dim);
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new BuildInputError(`input ${key}: row ${first + Math.floor(i / dim)} has a non-finite value (${values[i]}) at column ${i % dim}`);
    }
  }
  return values;
}

function parseRecord(text: string, where: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    // The parser's message quotes the line around the error: the tenant's detail, never the log's.
    throw new BuildInputError(`${where}: invalid JSON`, (e as Error).message);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new BuildInputError(`${where}: expected a JSON object`);
  return value as Record<string, unknown>;
}

/** String ids as given; integer ids as their decimal string (ids are strings in the index). */
function parseId(record: Record<string, unknown>, where: string): string {
  const id = record.id;
  if (id === undefined || id === null) throw new BuildInputError(`${where}: missing "id"`);
  if (typeof id === "number" && Number.isSafeInteger(id)) return String(id);
  if (typeof id !== "string") {
    throw new BuildInputError(`${where}: "id" must be a string or an integer, got ${describeType(id)}`, `got ${JSON.stringify(id).slice(0, 40)}`);
  }
  if (id.length === 0) throw new BuildInputError(`${where}: "id" is empty`);
  if (id.length > MAX_ID_CHARS) throw new BuildInputError(`${where}: "id" is ${id.length} characters, over the ${MAX_ID_CHARS} limit`);
  return id;
}

/** A JSON value's kind, for messages that must not quote it. */
function describeType(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return "a non-integer number";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

function parseText(record: Record<string, unknown>, where: string): string {
  const text = record.text;
  if (text === undefined) throw new BuildInputError(`${where}: missing "text"`);
  if (typeof text !== "string") throw new BuildInputError(`${where}: "text" must be a string`);
  if (text.trim() === "") throw new BuildInputError(`${where}: "text" is empty`);
  if (text.length > MAX_TEXT_CHARS) throw new BuildInputError(`${where}: "text" is ${text.length} characters, over the ${MAX_TEXT_CHARS} limit`);
  return text;
}

function pickFields(record: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const name of names) if (record[name] !== undefined) fields[name] = record[name];
  return fields;
}

/**
 * The document's declared filterable fields (absent ones left out). A wrong type fails the build
 * with the input key, the line and the field; the value itself is the tenant's detail.
 */
function filterValues(record: Record<string, unknown>, schema: FieldSchema | undefined, where: string): Record<string, unknown> {
  if (!schema) return {};
  const problems = checkDocumentFields(schema, record);
  if (problems.length > 0) throw new BuildInputError(`${where}: ${problems.map((p) => p.message).join("; ")}`);
  const values: Record<string, unknown> = {};
  for (const name of Object.keys(schema)) {
    const value = fieldValue(record, name);
    if (value !== undefined) values[name] = value;
  }
  return values;
}
