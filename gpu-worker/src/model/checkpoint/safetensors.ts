/**
 * safetensors reader and writer.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {string: string} }`,
 * then the data section; offsets are relative to the data section's start.
 * Every tensor is converted to float32 on read.
 */
import { readFile, writeFile } from "node:fs/promises";
import type { Float32Tensor, TensorMap } from "../types.ts";
import {
  decodeToFloat32,
  encodeFromFloat32,
  isDtype,
  itemSize,
  shapeSize,
  type Dtype,
  type FloatDtype,
} from "./dtype.ts";

const METADATA_KEY = "__metadata__";
/** Guards against absurd header lengths before allocating anything (the Rust library uses 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

export interface SafetensorsContents {
  tensors: TensorMap;
  metadata: Record<string, string>;
}

/** Parses a whole safetensors file held in memory. `source` names it in errors. */
export function parseSafetensors(bytes: Uint8Array, source = "safetensors file"): SafetensorsContents {
  const fail: (msg: string) => never = (msg) => {
    throw new SafetensorsError(`${source}: ${msg}`);
  };
  if (bytes.byteLength < 8) fail(`file is ${bytes.byteLength} bytes, too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > MAX_HEADER_BYTES) fail(`header length ${headerLen} is implausibly large (corrupt file?)`);
  if (8 + headerLen > bytes.byteLength) {
    fail(`header length ${headerLen} runs past the end of the ${bytes.byteLength}-byte file (truncated or corrupt)`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) fail("header is not a JSON object");

  const data = bytes.subarray(8 + headerLen);
  const entries: { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      metadata = parseMetadata(raw, fail);
      continue;
    }
    entries.push({ name, ...parseEntry(name, raw, fail) });
  }

  for (const e of entries) {
    if (e.end > data.byteLength) {
      fail(
        `tensor "${e.name}" data_offsets [${e.begin}, ${e.end}] run past the ${data.byteLength}-byte data section ` +
          `(truncated file?)`,
      );
    }
    const expected = shapeSize(e.shape) * itemSize(e.dtype);
    if (e.end - e.begin !== expected) {
      fail(
        `tensor "${e.name}" has ${e.end - e.begin} bytes but ${e.dtype} [${e.shape.join(", ")}] needs ${expected}`,
      );
    }
  }
  const byStart = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < byStart.length; i++) {
    const prev = byStart[i - 1];
    const cur = byStart[i];
    if (cur.begin < prev.end) fail(`tensors "${prev.name}" and "${cur.name}" have overlapping data_offsets`);
  }

  const tensors: TensorMap = new Map();
  for (const e of entries) {
    tensors.set(e.name, { shape: e.shape, data: decodeToFloat32(data.subarray(e.begin, e.end), e.dtype) });
  }
  return { tensors, metadata };
}

function parseMetadata(raw: unknown, fail: (msg: string) => never): Record<string, string> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail(`"${METADATA_KEY}" is not an object`);
  for (const [k, v] of Object.entries(raw as object)) {
    if (typeof v !== "string") fail(`"${METADATA_KEY}.${k}" is not a string`);
  }
  return raw as Record<string, string>;
}

function parseEntry(
  name: string,
  raw: unknown,
  fail: (msg: string) => never,
): { dtype: Dtype; shape: number[]; begin: number; end: number } {
  if (typeof raw !== "object" || raw === null) fail(`tensor "${name}" header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== "string") fail(`tensor "${name}" has no string "dtype"`);
  if (!isDtype(dtype as string)) fail(`tensor "${name}" has unknown or unsupported dtype "${String(dtype)}"`);
  const isNat = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
  if (!Array.isArray(shape) || !shape.every(isNat)) fail(`tensor "${name}" "shape" is not an array of naturals`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNat)) {
    fail(`tensor "${name}" "data_offsets" is not [begin, end]`);
  }
  const [begin, end] = offsets as number[];
  if (begin > end) fail(`tensor "${name}" data_offsets [${begin}, ${end}] has begin after end`);
  return { dtype: dtype as Dtype, shape: shape as number[], begin, end };
}

export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  return parseSafetensors(await readFile(path), path);
}

export interface SafetensorsWriteOptions {
  /** Element type to store; float32 values are rounded to it. Default F32. */
  dtype?: FloatDtype;
  metadata?: Record<string, string>;
}

/** Serialises tensors (in map order) as a safetensors file. */
export function encodeSafetensors(tensors: TensorMap, options: SafetensorsWriteOptions = {}): Uint8Array {
  const dtype = options.dtype ?? "F32";
  const header: Record<string, unknown> = {};
  if (options.metadata) header[METADATA_KEY] = options.metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    checkTensor(name, t);
    const blob = encodeFromFloat32(t.data, dtype);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + blob.byteLength] };
    blobs.push(blob);
    offset += blob.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data section starts 8-byte aligned, as the reference implementation does.
  json += " ".repeat((8 - ((Buffer.byteLength(json) + 8) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.byteLength;
  for (const blob of blobs) {
    out.set(blob, pos);
    pos += blob.byteLength;
  }
  return out;
}

export async function writeSafetensors(
  path: string,
  tensors: TensorMap,
  options: SafetensorsWriteOptions = {},
): Promise<void> {
  await writeFile(path, encodeSafetensors(tensors, options));
}

/** Rejects a tensor whose data length disagrees with its shape (a bug in the caller). */
export function checkTensor(name: string, t: Float32Tensor): void {
  if (t.data.length !== shapeSize(t.shape)) {
    throw new Error(`tensor "${name}" has ${t.data.length} values but shape [${t.shape.join(", ")}]`);
  }
}
