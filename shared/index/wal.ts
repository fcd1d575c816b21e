/// <reference path="../qnet/msgpackr-no-eval.d.ts" />
/**
 * A write-ahead-log object (`wal/<seq>.hwal`, keys.ts walKey): one acknowledged write batch of a
 * living index, immutable once written (create-if-absent), with its documents already embedded so
 * search and compaction never re-encode them. Documented in shared/FORMATS.md ("Write-ahead log").
 *
 *   magic "HYPXWAL1" (8 bytes) | body length u32 LE | body CRC-32 u32 LE | body (msgpack map)
 *
 * The body: {format, version, tenant, index, seq, batchHash, createdAt, modelId, dim,
 * upsert: [{id, fields}], embeddings: bin (float32 LE, upsert.length × dim), delete: [id]}.
 * Within a batch deletes apply first, then upserts (so a batch may delete and re-upsert an id);
 * across batches the higher seq wins.
 */
import { Packr, Unpackr } from "msgpackr/index-no-eval";
import * as z from "zod";
import { unpackOneValue } from "../msgpack-one.ts";
import { crc32 } from "./crc32.ts";
import { IndexFormatError } from "./errors.ts";
import { ID_PATTERN } from "./keys.ts";
import { sha256Hex } from "./sha256.ts";

export const WAL_MAGIC = "HYPXWAL1";
export const WAL_FORMAT = "hypencoder.wal";
export const WAL_FORMAT_VERSION = 1;
const PREAMBLE_BYTES = 16;
const MAGIC_BYTES = new TextEncoder().encode(WAL_MAGIC);

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false });

export interface WalDocument {
  id: string;
  /** Every field of the written document except id, text included. */
  fields: Record<string, unknown>;
}

export interface WalBatch {
  tenant: string;
  index: string;
  seq: number;
  /** batchHash() of the batch's documents and deletes: how a retry recognises its own write. */
  batchHash: string;
  createdAt: string;
  modelId: string;
  dim: number;
  upsert: WalDocument[];
  /** upsert.length × dim, row-major. */
  embeddings: Float32Array;
  delete: string[];
}

const bodySchema = z
  .object({
    format: z.literal(WAL_FORMAT),
    version: z.literal(WAL_FORMAT_VERSION),
    tenant: z.string().regex(ID_PATTERN),
    index: z.string().regex(ID_PATTERN),
    seq: z.number().int().positive(),
    batchHash: z.string().regex(/^[0-9a-f]{64}$/),
    createdAt: z.string(),
    modelId: z.string().min(1),
    dim: z.number().int().positive(),
    upsert: z.array(z.object({ id: z.string().min(1), fields: z.record(z.string(), z.unknown()) })),
    embeddings: z.instanceof(Uint8Array),
    delete: z.array(z.string().min(1)),
  })
  .strict();

/**
 * The SHA-256 (hex) of the batch's content, in a canonical form: upserts (id and fields, keys
 * sorted at every level) and deletes in their given order. The edge computes it over the body it
 * accepted, the worker over what it writes; both call this function.
 */
export function batchHash(upsert: readonly WalDocument[], deletes: readonly string[]): string {
  return sha256Hex(new TextEncoder().encode(canonicalJson({ upsert: upsert.map((d) => ({ id: d.id, fields: d.fields })), delete: deletes })));
}

/** JSON with object keys sorted at every level (arrays keep their order). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value as object).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

export function encodeWalBatch(batch: WalBatch): Uint8Array {
  if (batch.embeddings.length !== batch.upsert.length * batch.dim) {
    throw new IndexFormatError(`WAL batch ${batch.seq}: ${batch.embeddings.length} embedding values for ${batch.upsert.length} documents of dim ${batch.dim}`);
  }
  const embeddings = new Uint8Array(batch.embeddings.length * 4);
  const view = new DataView(embeddings.buffer);
  for (let i = 0; i < batch.embeddings.length; i++) view.setFloat32(i * 4, batch.embeddings[i]!, true);
  const body = packr.pack({
    format: WAL_FORMAT,
    version: WAL_FORMAT_VERSION,
    tenant: batch.tenant,
    index: batch.index,
    seq: batch.seq,
    batchHash: batch.batchHash,
    createdAt: batch.createdAt,
    modelId: batch.modelId,
    dim: batch.dim,
    upsert: batch.upsert,
    embeddings,
    delete: batch.delete,
  });
  const out = new Uint8Array(PREAMBLE_BYTES + body.length);
  out.set(MAGIC_BYTES, 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(8, body.length, true);
  dv.setUint32(12, crc32(body) >>> 0, true);
  out.set(body, PREAMBLE_BYTES);
  return out;
}

/** Decodes and verifies a WAL object; `label` (its key) names it in errors. */
export function decodeWalBatch(bytes: Uint8Array, label = "WAL object"): WalBatch {
  const fail = (problem: string): never => {
    throw new IndexFormatError(`${label}: ${problem}`);
  };
  if (bytes.length < PREAMBLE_BYTES) fail(`${bytes.length} bytes is too short for a WAL object`);
  for (let i = 0; i < MAGIC_BYTES.length; i++) if (bytes[i] !== MAGIC_BYTES[i]) fail(`not a WAL object (magic is not ${WAL_MAGIC})`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = dv.getUint32(8, true);
  if (length !== bytes.length - PREAMBLE_BYTES) fail(`body length ${length} but ${bytes.length - PREAMBLE_BYTES} bytes follow`);
  const body = bytes.subarray(PREAMBLE_BYTES);
  if ((crc32(body) >>> 0) !== dv.getUint32(12, true)) fail("body CRC-32 mismatch (corrupt object)");
  const one = unpackOneValue(unpackr, body);
  if (!one.ok) fail(`body is not one msgpack value (${one.problem})`);
  const parsed = bodySchema.safeParse((one as { value: unknown }).value);
  if (!parsed.success) fail(`body: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`);
  const b = parsed.data!;
  if (b.embeddings.length !== b.upsert.length * b.dim * 4) fail(`embeddings hold ${b.embeddings.length} bytes, expected ${b.upsert.length} × ${b.dim} float32`);
  const ev = new DataView(b.embeddings.buffer, b.embeddings.byteOffset, b.embeddings.byteLength);
  const embeddings = new Float32Array(b.upsert.length * b.dim);
  for (let i = 0; i < embeddings.length; i++) embeddings[i] = ev.getFloat32(i * 4, true);
  return {
    tenant: b.tenant,
    index: b.index,
    seq: b.seq,
    batchHash: b.batchHash,
    createdAt: b.createdAt,
    modelId: b.modelId,
    dim: b.dim,
    upsert: b.upsert as WalDocument[],
    embeddings,
    delete: b.delete,
  };
}
