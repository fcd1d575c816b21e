import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { NotFoundError, type BlobStore } from "../../store/blob-store.ts";
import { BuildInputError } from "./errors.ts";
import { openInput, readLines } from "./input-stream.ts";

const enc = (s: string) => new TextEncoder().encode(s);
async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}
async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
/** Just enough of a BlobStore for openInput. */
const storeOf = (objects: Record<string, Uint8Array>) =>
  ({
    getStream: async (key: string) => {
      if (!objects[key]) throw new NotFoundError(key, "/secret/place");
      return Readable.from(chunked(objects[key], 5));
    },
  }) as unknown as BlobStore;

describe("readLines", () => {
  it("splits on \\n and \\r\\n across chunk boundaries, counting (not yielding) empty lines, with or without a final newline", async () => {
    const text = 'a\r\n\n\r\nb é 北京\n \nlast';
    for (const size of [1, 2, 3, 100]) {
      const lines = await collect(readLines(chunked(enc(text), size), "k"));
      expect(lines).toEqual([{ text: "a", line: 1 }, { text: "b é 北京", line: 4 }, { text: " ", line: 5 }, { text: "last", line: 6 }]);
    }
  });

  it("refuses invalid UTF-8 and over-long lines, naming the key and line", async () => {
    const bad = new Uint8Array([...enc("ok\n"), 0xff, 0xfe, 0x0a]);
    await expect(collect(readLines(chunked(bad, 2), "in.jsonl"))).rejects.toThrow("input in.jsonl line 2: not valid UTF-8");
    await expect(collect(readLines(chunked(enc(`short\n${"x".repeat(50)}\n`), 7), "in.jsonl", 20))).rejects.toThrow(
      "input in.jsonl line 2: longer than 20 bytes",
    );
  });
});

describe("openInput", () => {
  it("gunzips by .gz suffix or by magic bytes and passes plain bytes through", async () => {
    const body = "line 1\nline 2\n";
    const store = storeOf({ "a.gz": gzipSync(body), "b.jsonl": gzipSync(body), "c.jsonl": enc(body) });
    for (const key of ["a.gz", "b.jsonl", "c.jsonl"]) {
      const opened = await openInput(store, key);
      expect(opened.gzip).toBe(key !== "c.jsonl");
      expect(Buffer.concat(await collect(opened.chunks)).toString()).toBe(body);
    }
  });

  it("names the key, not the store, for a missing object, and reports corrupt gzip as bad input", async () => {
    const store = storeOf({ "bad.gz": new Uint8Array([0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9]) });
    const missing = await openInput(store, "nope.jsonl").catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(BuildInputError);
    expect((missing as Error).message).toBe("input nope.jsonl: not found");
    const corrupt = collect((await openInput(store, "bad.gz")).chunks);
    await expect(corrupt).rejects.toThrow(/^input bad.gz: not valid gzip/);
  });
});
