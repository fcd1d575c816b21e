/// <reference path="../../../shared/qnet/msgpackr-no-eval.d.ts" />
/**
 * Request bodies: read once with a size limit (the signature covers the exact bytes), then decoded
 * as JSON or msgpack by Content-Type, validated with the route's zod schema, and checked against the
 * signed tenant. Each failure is a precise 4xx.
 */
import { Unpackr } from "msgpackr/index-no-eval";
import type { z } from "zod";
import { msgpackStrictValueEnd } from "../../../shared/api/frames.ts";
import { MSGPACK_FRAMES_CONTENT_TYPE } from "../../../shared/api/worker-api.ts";
import { readCappedBody } from "../../../shared/http/capped-body.ts";
import { ApiError, describeZodError } from "./errors.ts";

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false });

/**
 * Reads the whole body (shared/http/capped-body.ts), refusing (413) as soon as it passes `maxBytes`;
 * `onChunk` sees each chunk (auth.ts hashes and counts them).
 */
export function readBody(request: Request, maxBytes: number, onChunk?: (chunk: Uint8Array) => void): Promise<Uint8Array> {
  return readCappedBody(request, maxBytes, () => new ApiError(413, "body_too_large", `request body is larger than ${maxBytes} bytes`), { onChunk });
}

/** Decodes by Content-Type: application/json (the default for the edge) or application/msgpack. */
export function decodeBody(contentType: string | undefined, body: Uint8Array): unknown {
  const mediaType = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (mediaType === "application/json") {
    try {
      return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
    } catch (e) {
      throw new ApiError(400, "invalid_json", `body is not valid JSON: ${(e as Error).message.slice(0, 200)}`);
    }
  }
  if (mediaType === MSGPACK_FRAMES_CONTENT_TYPE) {
    // Walk the structure first: msgpackr decodes the never-used byte 0xc1 to a marker object instead
    // of failing, and its trailing-bytes error would embed a dump of the body.
    let end: number;
    try {
      end = msgpackStrictValueEnd(body, 0, body.length);
    } catch (e) {
      throw new ApiError(400, "invalid_msgpack", `body is not valid msgpack: ${(e as Error).message.replace(/^invalid msgpack: /, "")}`);
    }
    if (end < 0) throw new ApiError(400, "invalid_msgpack", `body is not valid msgpack: truncated after ${body.length} bytes`);
    if (end !== body.length) throw new ApiError(400, "invalid_msgpack", "body must be exactly one msgpack value (trailing bytes)");
    try {
      return unpackr.unpack(body);
    } catch (e) {
      throw new ApiError(400, "invalid_msgpack", `body is not valid msgpack: ${String((e as Error).message).slice(0, 200)}`);
    }
  }
  throw new ApiError(
    415,
    "unsupported_media_type",
    `Content-Type must be application/json or ${MSGPACK_FRAMES_CONTENT_TYPE}, got ${mediaType ? JSON.stringify(mediaType.slice(0, 100)) : "none"}`,
  );
}

/** Decodes and validates a body for `tenant`; a body naming another tenant is refused (403). */
export function parseRequest<S extends z.ZodType<{ tenant: string }>>(
  schema: S,
  contentType: string | undefined,
  body: Uint8Array,
  tenant: string,
): z.output<S> {
  const parsed = schema.safeParse(decodeBody(contentType, body));
  if (!parsed.success) throw new ApiError(400, "invalid_request", describeZodError(parsed.error));
  if (parsed.data.tenant !== tenant) {
    throw new ApiError(403, "forbidden", "the body's tenant is not the tenant the request was signed for");
  }
  return parsed.data;
}
