/**
 * Reads a request body with a size cap, for the edge (edge/src/http/validate.ts) and the GPU worker
 * (gpu-worker/src/service/request-body.ts). Content-Length is checked first (a cheap refusal), but it
 * is optional (chunked bodies) and untrusted, so the stream is also counted as it is read and
 * cancelled as soon as it passes the cap: an oversized body is never buffered whole.
 *
 * Each side answers an oversized body in its own error type (its own code and message), so the
 * caller passes `tooLarge`; this module has no HTTP in it. `onChunk` sees each chunk as it arrives
 * (the worker hashes the body while it streams, and counts it against its budget of unverified
 * bytes); if it throws, the stream is cancelled and the error thrown.
 *
 * Draining (`drainLimitBytes`): cancelling a request body mid-read leaves the connection with
 * unread bytes, and under `wrangler dev` the client's writes are then reset and the next request
 * on that keep-alive connection stalls. A caller that has already authenticated the sender (the
 * edge) can instead read and discard up to `drainLimitBytes` past the cap, so the answer (413)
 * goes out on a connection that stays usable; past the drain limit the body is cancelled after
 * all. The GPU worker does not drain: it would spend memory bandwidth on unauthenticated bytes.
 */
import { concatBytes } from "../bytes.ts";

export interface CappedBodyOptions {
  /** Bytes past `maxBytes` read and discarded before answering (default 0: cancel at once). */
  drainLimitBytes?: number;
  /** Sees each chunk within the cap as it arrives; a throw cancels the stream and is rethrown. */
  onChunk?: (chunk: Uint8Array) => void;
}

export async function readCappedBody(request: Request, maxBytes: number, tooLarge: () => Error, options: CappedBodyOptions = {}): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge();
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await drain(reader, maxBytes + (options.drainLimitBytes ?? 0) - total);
      throw tooLarge();
    }
    try {
      options.onChunk?.(value);
    } catch (error) {
      await reader.cancel();
      throw error;
    }
    chunks.push(value);
  }
  // One chunk (the common case for small bodies) is returned as is, without a copy.
  return chunks.length === 1 ? chunks[0]! : concatBytes(chunks);
}

/** Reads and discards up to `budget` more bytes to the body's end; a longer body is cancelled. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, budget: number): Promise<void> {
  let left = budget;
  while (left >= 0) {
    const { done, value } = await reader.read();
    if (done) return;
    left -= value.byteLength;
  }
  await reader.cancel();
}
