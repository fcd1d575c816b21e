/**
 * Search answers on the wire. Whole answers: JSON, or one msgpack `result` frame (the worker's frame
 * format, shared/api/frames.ts). Streams: the same frames as NDJSON lines, server-sent events or
 * back-to-back msgpack, progress first and the result (or an error) last.
 *
 * Content types are chosen to stream through miniflare/wrangler dev, which gzip and therefore hold
 * back application/json and text/plain: application/x-ndjson, text/event-stream, application/msgpack.
 */
import { encodeFrame, type ResultFrame } from "../../../shared/api/frames.ts";
import { type Frame, MSGPACK_FRAMES_CONTENT_TYPE } from "../../../shared/api/worker-api.ts";
import type { ResponseFormat } from "./request.ts";

export const CONTENT_TYPES: Record<ResponseFormat, string> = {
  json: "application/json; charset=utf-8",
  msgpack: MSGPACK_FRAMES_CONTENT_TYPE,
  ndjson: "application/x-ndjson; charset=utf-8",
  sse: "text/event-stream; charset=utf-8",
};

/** What clients get: the worker's result frame, without fan-out internals, plus the version searched. */
export function publicResult(result: ResultFrame, version: number): ResultFrame & { version: number } {
  return { type: "result", hits: result.hits, stats: result.stats, partial: result.partial, missingShards: result.missingShards, version };
}

const encoder = new TextEncoder();

/** One frame in a stream format. */
export function encodeStreamFrame(format: ResponseFormat, frame: Frame): Uint8Array {
  if (format === "msgpack") return encodeFrame(frame);
  const json = JSON.stringify(frame);
  return encoder.encode(format === "sse" ? `event: ${frame.type}\ndata: ${json}\n\n` : `${json}\n`);
}

/** A whole (non-streamed) answer's body. */
export function encodeWhole(format: "json" | "msgpack", result: ResultFrame & { version: number }): Uint8Array | string {
  if (format === "msgpack") return encodeFrame(result);
  const { type: _type, ...body } = result;
  return JSON.stringify(body);
}
