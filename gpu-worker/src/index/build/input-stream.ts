/**
 * Opens a build input from the store as a stream of byte chunks, gunzipping it when it is
 * gzip-compressed (a `.gz` key, or the gzip magic bytes, since uploads are not always named well),
 * and splits text inputs into lines with a hard cap on line length, so one runaway line cannot
 * exhaust the worker's memory.
 *
 * Every byte is counted as it streams (an InputMeter per reading pass): blank lines and a gzip of
 * newlines cost what they decompress to, the build's abort signal is checked on every chunk (not per
 * document, which a flood of blank lines never produces), and the decompressed total and a gzip's
 * decompression ratio are capped (BuildLimitError input_too_large).
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { isNotFound, type BlobStore } from "../../store/blob-store.ts";
import { BuildInputError, BuildLimitError } from "./errors.ts";
import { type BuildLimits, RATIO_GRACE_BYTES } from "./limits.ts";

const GZIP_MAGIC = [0x1f, 0x8b];

export interface OpenedInput {
  /** The object's bytes, decompressed. */
  chunks: AsyncIterable<Uint8Array>;
  gzip: boolean;
}

/** Counts the decompressed bytes of one reading pass over a build's inputs, against its limits. */
export class InputMeter {
  /** Decompressed bytes read so far, over every input. */
  bytes = 0;

  constructor(
    private readonly limits: Pick<BuildLimits, "maxInputBytes" | "maxGzipRatio">,
    /** Called on every chunk: throws when the build was aborted or ran out of time. */
    private readonly checkAborted: () => void = () => {},
  ) {}

  /** Adds a chunk of `key`'s bytes; throws when the total passes the cap or the build was aborted. */
  count(key: string, bytes: number): void {
    this.checkAborted();
    this.bytes += bytes;
    if (this.bytes > this.limits.maxInputBytes) {
      throw new BuildLimitError("input_too_large", `input ${key}: the build's inputs are larger than ${this.limits.maxInputBytes} bytes (decompressed)`);
    }
  }

  /** Refuses a gzip input that has decompressed to more than maxGzipRatio times its compressed bytes so far. */
  checkRatio(key: string, compressed: number, decompressed: number): void {
    if (decompressed > RATIO_GRACE_BYTES && decompressed > this.limits.maxGzipRatio * compressed) {
      throw new BuildLimitError(
        "input_too_large",
        `input ${key}: decompresses to more than ${this.limits.maxGzipRatio} times its compressed size; upload it uncompressed or split it`,
      );
    }
  }
}

const UNMETERED = new InputMeter({ maxInputBytes: Infinity, maxGzipRatio: Infinity });

/**
 * The object's bytes, decompressed if gzip, each chunk counted by `meter`. A missing object is a
 * BuildInputError naming the key.
 */
export async function openInput(store: BlobStore, key: string, meter: InputMeter = UNMETERED): Promise<OpenedInput> {
  let raw: Readable;
  try {
    raw = await store.getStream(key);
  } catch (e) {
    // NotFoundError's message names the store location (bucket, folder), which is not the tenant's business.
    if (isNotFound(e)) throw new BuildInputError(`input ${key}: not found`);
    throw e;
  }
  const iterator = (raw as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  const first = await iterator.next();
  const head = first.done ? new Uint8Array(0) : first.value;
  const isGzip = key.endsWith(".gz") || (head.length >= 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]);
  async function* replay(): AsyncGenerator<Uint8Array> {
    try {
      if (!first.done) yield head;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
    } finally {
      raw.destroy();
    }
  }
  async function* plain(): AsyncGenerator<Uint8Array> {
    for await (const chunk of replay()) {
      meter.count(key, chunk.length);
      yield chunk;
    }
  }
  if (!isGzip) return { chunks: plain(), gzip: false };
  const gunzip = createGunzip();
  // pipeline destroys the gunzip stream with the error, which then surfaces to its reader.
  pipeline(Readable.from(replay()), gunzip).catch(() => {});
  return { chunks: gunzipped(gunzip, key, meter), gzip: true };
}

async function* gunzipped(gunzip: ReturnType<typeof createGunzip>, key: string, meter: InputMeter): AsyncGenerator<Uint8Array> {
  let decompressed = 0;
  try {
    for await (const chunk of gunzip) {
      decompressed += chunk.length;
      meter.count(key, chunk.length);
      // bytesWritten: the compressed bytes gunzip has consumed, not those read ahead into its buffer.
      meter.checkRatio(key, gunzip.bytesWritten, decompressed);
      yield chunk;
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === "string" && code.startsWith("Z_")) throw new BuildInputError(`input ${key}: not valid gzip (${(e as Error).message})`);
    throw e;
  } finally {
    gunzip.destroy();
  }
}

export interface TextLine {
  text: string;
  /** 1-based. */
  line: number;
}

/** A line longer than this is refused: the 1,000,000-character text limit plus JSON escapes and fields. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

/**
 * UTF-8 lines ("\n" or "\r\n"). Empty lines are counted (line numbers stay the file's) but not
 * yielded: a flood of newlines costs one comparison per byte, not one yield per line.
 * Invalid UTF-8 and over-long lines are BuildInputErrors naming `key` and the line.
 */
export async function* readLines(chunks: AsyncIterable<Uint8Array>, key: string, maxLineBytes = MAX_LINE_BYTES): AsyncGenerator<TextLine> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let line = 0;
  /** The line ending at `last`, or undefined for an empty one (counted all the same). */
  const emit = (last: Uint8Array): TextLine | undefined => {
    line++;
    let bytes = last;
    if (pending.length > 0) {
      bytes = new Uint8Array(pendingBytes + last.length);
      let at = 0;
      for (const p of pending) {
        bytes.set(p, at);
        at += p.length;
      }
      bytes.set(last, at);
      pending = [];
      pendingBytes = 0;
    }
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length === 0) return undefined;
    try {
      return { text: decoder.decode(bytes), line };
    } catch {
      throw new BuildInputError(`input ${key} line ${line}: not valid UTF-8`);
    }
  };
  const tooLong = () => new BuildInputError(`input ${key} line ${line + 1}: longer than ${maxLineBytes} bytes`);
  for await (const chunk of chunks) {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      if (pendingBytes + nl - start > maxLineBytes) throw tooLong();
      const next = emit(chunk.subarray(start, nl));
      if (next) yield next;
      start = nl + 1;
    }
    if (start < chunk.length) {
      pendingBytes += chunk.length - start;
      if (pendingBytes > maxLineBytes) throw tooLong();
      // Copy: a stream may reuse its chunk buffers.
      pending.push(chunk.slice(start));
    }
  }
  if (pendingBytes > 0) {
    const last = emit(new Uint8Array(0));
    if (last) yield last;
  }
}
