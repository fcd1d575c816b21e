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
 */
import { concatBytes } from "../bytes.ts";

export async function readCappedBody(
  request: Request,
  maxBytes: number,
  tooLarge: () => Error,
  onChunk?: (chunk: Uint8Array) => void,
): Promise<Uint8Array> {
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
      await reader.cancel();
      throw tooLarge();
    }
    try {
      onChunk?.(value);
    } catch (error) {
      await reader.cancel();
      throw error;
    }
    chunks.push(value);
  }
  // One chunk (the common case for small bodies) is returned as is, without a copy.
  return chunks.length === 1 ? chunks[0]! : concatBytes(chunks);
}
