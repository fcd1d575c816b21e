/// <reference path="../qnet/msgpackr-no-eval.d.ts" />
/**
 * Response frames (worker-api.ts `Frame`) on the wire: each frame is one plain msgpack map, and a
 * response is the frames back to back with nothing between them. `encodeFrame` writes one;
 * `FrameDecoder` reads them from a byte stream cut at arbitrary points.
 *
 * Runs in Node and in workerd: msgpackr comes from its no-eval entry (workerd forbids new Function),
 * without records, so the bytes stay plain msgpack any language can read.
 *
 * msgpack has no length prefix, so the decoder finds where a frame ends by walking the msgpack
 * headers (`msgpackValueEnd`): that skips string/binary payloads by their lengths, so a 20 MB q-net
 * frame arriving in many chunks is re-walked in a few steps per chunk, not re-parsed each time.
 */
import { Packr, Unpackr } from "msgpackr/index-no-eval";
import * as z from "zod";
import type { Frame } from "./worker-api.ts";

/** The frames that the edge and the worker handle by kind (both sides import these; neither redefines them). */
export type ProgressFrame = Extract<Frame, { type: "progress" }>;
export type ResultFrame = Extract<Frame, { type: "result" }>;
export type ScoresFrame = Extract<Frame, { type: "scores" }>;

const packr = new Packr({ useRecords: false, moreTypes: true });
const unpackr = new Unpackr({ useRecords: false, moreTypes: true, mapsAsObjects: true, structuredClone: false });

/** Thrown for bytes that are not a valid frame sequence; the message says what and where. */
export class FrameDecodeError extends Error {
  override name = "FrameDecodeError";
}

/** A frame over the decoder's `maxFrameBytes`: the answer is too large, not garbled. */
export class FrameTooLargeError extends FrameDecodeError {
  override name = "FrameTooLargeError";
  constructor(readonly maxFrameBytes: number, offset: number) {
    super(`frame at byte ${offset} is larger than ${maxFrameBytes} bytes`);
  }
}

const hitSchema = z.object({ id: z.string(), score: z.number(), fields: z.record(z.string(), z.unknown()).optional() });

/** Unknown keys are dropped, not refused: fields may be added to a frame without breaking readers. */
export const frameSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("qnet"), qnet: z.instanceof(Uint8Array, { message: "qnet must be msgpack binary" }) }),
  z.object({ type: z.literal("progress"), shard: z.string(), iteration: z.number().int(), hits: z.array(hitSchema) }),
  z.object({
    type: z.literal("result"),
    hits: z.array(hitSchema),
    stats: z.object({
      docsScored: z.number(),
      iterations: z.number(),
      shardsSearched: z.number(),
      ms: z.object({ queue: z.number(), encode: z.number(), search: z.number(), total: z.number() }),
      /** A filtered search's plan (worker-api.ts SearchStats.plan); kept, or the edge could not merge it. */
      plan: z.enum(["filtered-walk", "filtered-exhaustive"]).optional(),
    }),
    partial: z.boolean(),
    missingShards: z.array(z.string()),
    /** Set by the edge in public answers (the index version searched); workers leave it out. */
    version: z.number().int().positive().optional(),
  }),
  z.object({ type: z.literal("scores"), scores: z.array(z.object({ id: z.string(), score: z.number() })), missing: z.array(z.string()) }),
  z.object({ type: z.literal("error"), code: z.string(), message: z.string() }),
]);

/** One frame as msgpack bytes that own their buffer. */
export function encodeFrame(frame: Frame): Uint8Array {
  const packed = packr.pack(frame);
  // Packr returns a view of a reused buffer; copy so the caller may keep or transfer the bytes.
  return new Uint8Array(packed);
}

/** Fixed-size headers: type byte → bytes after it. Variable-size ones are handled in code. */
function fixedPayload(b: number): number {
  switch (b) {
    case 0xc0: case 0xc2: case 0xc3: return 0; // nil, false, true
    case 0xcc: case 0xd0: return 1;
    case 0xcd: case 0xd1: return 2;
    case 0xca: case 0xce: case 0xd2: return 4;
    case 0xcb: case 0xcf: case 0xd3: return 8;
    case 0xd4: return 2; case 0xd5: return 3; case 0xd6: return 5; case 0xd7: return 9; case 0xd8: return 17; // fixext: type + data
    default: return -1;
  }
}

function readLength(buf: Uint8Array, pos: number, size: 1 | 2 | 4): number {
  if (size === 1) return buf[pos]!;
  if (size === 2) return (buf[pos]! << 8) | buf[pos + 1]!;
  return ((buf[pos]! << 24) >>> 0) + (buf[pos + 1]! << 16) + (buf[pos + 2]! << 8) + buf[pos + 3]!;
}

/**
 * Where the msgpack value starting at `start` ends (exclusive), or -1 if `buf[start, end)` does not
 * hold all of it yet. Throws FrameDecodeError on the one byte msgpack never uses (0xc1).
 * `onString` sees the payload range of each complete str (map keys included).
 */
export function msgpackValueEnd(buf: Uint8Array, start: number, end: number, onString?: (from: number, to: number) => void): number {
  let pos = start;
  let pending = 1; // values still to walk; containers add their children
  while (pending > 0) {
    if (pos >= end) return -1;
    const b = buf[pos++]!;
    pending--;
    if (b <= 0x7f || b >= 0xe0) continue; // positive / negative fixint
    if (b <= 0x8f) { pending += 2 * (b & 0x0f); continue; } // fixmap
    if (b <= 0x9f) { pending += b & 0x0f; continue; } // fixarray
    if (b <= 0xbf) { // fixstr
      const n = b & 0x1f;
      if (onString && pos + n <= end) onString(pos, pos + n);
      pos += n;
      continue;
    }
    if (b === 0xc1) throw new FrameDecodeError(`invalid msgpack: byte 0xc1 at offset ${pos - 1}`);
    const fixed = fixedPayload(b);
    if (fixed >= 0) { pos += fixed; continue; }
    // Variable length: [length bytes][ext type byte?][payload], or a container count.
    const lengthSize = ({ 0xc4: 1, 0xc5: 2, 0xc6: 4, 0xc7: 1, 0xc8: 2, 0xc9: 4, 0xd9: 1, 0xda: 2, 0xdb: 4, 0xdc: 2, 0xdd: 4, 0xde: 2, 0xdf: 4 } as Record<number, 1 | 2 | 4>)[b]!;
    if (pos + lengthSize > end) return -1;
    const n = readLength(buf, pos, lengthSize);
    pos += lengthSize;
    if (b === 0xdc || b === 0xdd) pending += n;
    else if (b === 0xde || b === 0xdf) pending += 2 * n;
    else {
      if (onString && b >= 0xd9 && b <= 0xdb && pos + n <= end) onString(pos, pos + n);
      pos += n + (b >= 0xc7 && b <= 0xc9 ? 1 : 0); // bin/str: payload; ext: type byte + payload
    }
  }
  return pos <= end ? pos : -1;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * `msgpackValueEnd` for a request body: also throws FrameDecodeError on a string that is not valid
 * UTF-8 (msgpackr would decode it to U+FFFD and carry on), so a msgpack body is refused exactly where
 * the same text in a JSON body is. Response frames skip this: their strings come from the worker.
 */
export function msgpackStrictValueEnd(buf: Uint8Array, start: number, end: number): number {
  return msgpackValueEnd(buf, start, end, (from, to) => {
    try {
      strictUtf8.decode(buf.subarray(from, to));
    } catch {
      throw new FrameDecodeError(`invalid msgpack: the string at offset ${from} is not valid UTF-8`);
    }
  });
}

/** Validates an unpacked value as a Frame, with the failing path in the message. */
export function parseFrame(value: unknown): Frame {
  const parsed = frameSchema.safeParse(value);
  if (parsed.success) return parsed.data as Frame;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
  throw new FrameDecodeError(`invalid frame: ${path}${issue.message}`);
}

export interface FrameDecoderOptions {
  /** Largest frame accepted, so a garbled stream cannot buffer without limit. Default 256 MiB. */
  maxFrameBytes?: number;
}

/**
 * Streaming decoder: `push` chunks as they arrive and get back every frame they complete (a frame
 * may span chunks; a chunk may hold several frames). Call `end()` when the stream ends: it throws if
 * a partial frame is left over.
 */
export class FrameDecoder {
  private buffer = new Uint8Array(0);
  private start = 0;
  private length = 0;
  private offset = 0; // stream offset of buffer[start], for error messages
  private readonly maxFrameBytes: number;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? 256 * 2 ** 20;
  }

  push(chunk: Uint8Array): Frame[] {
    this.append(chunk);
    const frames: Frame[] = [];
    for (;;) {
      const end = msgpackValueEnd(this.buffer, this.start, this.length);
      if (end < 0) break;
      // slice() copies: decoded binary fields are views of their input, and this buffer is reused.
      const bytes = this.buffer.slice(this.start, end);
      let value: unknown;
      try {
        value = unpackr.unpack(bytes);
      } catch (e) {
        throw new FrameDecodeError(`invalid msgpack in the frame at byte ${this.offset}: ${String((e as Error).message).slice(0, 200)}`);
      }
      frames.push(parseFrame(value));
      this.offset += end - this.start;
      this.start = end;
    }
    if (this.length - this.start > this.maxFrameBytes) {
      throw new FrameTooLargeError(this.maxFrameBytes, this.offset);
    }
    return frames;
  }

  /** Throws if the stream ended inside a frame. */
  end(): void {
    const left = this.length - this.start;
    if (left > 0) throw new FrameDecodeError(`stream ended inside a frame: ${left} bytes of an incomplete frame at byte ${this.offset}`);
  }

  /** Appends with amortised doubling, dropping consumed bytes first, so pushing n bytes costs O(n). */
  private append(chunk: Uint8Array): void {
    const live = this.length - this.start;
    if (this.length + chunk.length > this.buffer.length) {
      const target = live + chunk.length;
      const next = target > this.buffer.length / 2 ? new Uint8Array(Math.max(1024, target * 2)) : this.buffer;
      if (next === this.buffer) next.copyWithin(0, this.start, this.length);
      else next.set(this.buffer.subarray(this.start, this.length));
      this.buffer = next;
      this.length = live;
      this.start = 0;
    }
    this.buffer.set(chunk, this.length);
    this.length += chunk.length;
  }
}

/** Decodes every frame of a byte stream (a fetch body, for example). */
export async function* decodeFrames(
  stream: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
  options?: FrameDecoderOptions,
): AsyncGenerator<Frame> {
  const decoder = new FrameDecoder(options);
  const iterable: AsyncIterable<Uint8Array> =
    Symbol.asyncIterator in stream ? (stream as AsyncIterable<Uint8Array>) : readerIterable(stream as ReadableStream<Uint8Array>);
  for await (const chunk of iterable) yield* decoder.push(chunk);
  decoder.end();
}

async function* readerIterable(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}
