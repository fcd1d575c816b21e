import { Packr } from "msgpackr/index-no-eval";
import { describe, expect, it } from "vitest";
import { concatBytes } from "../bytes.ts";
import { decodeFrames, encodeFrame, FrameDecodeError, FrameDecoder, msgpackValueEnd } from "./frames.ts";
import type { Frame } from "./worker-api.ts";

const FRAMES: Frame[] = [
  { type: "qnet", qnet: new Uint8Array(70_000).map((_, i) => i % 251) },
  { type: "progress", shard: "s0", iteration: 1, hits: [{ id: "a", score: 0.5 }] },
  {
    type: "result",
    hits: [{ id: "a", score: 1.25, fields: { text: "x", n: 3 } }, { id: "b", score: -0.1 }],
    stats: { docsScored: 10, iterations: 2, shardsSearched: 1, ms: { queue: 0, encode: 1.5, search: 2, total: 4 } },
    partial: false,
    missingShards: [],
  },
  {
    type: "result",
    hits: [{ id: "f", score: 2 }],
    // A filtered search's plan survives decoding: the edge merges it into the public stats.
    stats: { docsScored: 3, iterations: 1, shardsSearched: 1, ms: { queue: 0, encode: 1, search: 1, total: 2 }, plan: "filtered-exhaustive" },
    partial: false,
    missingShards: [],
  },
  { type: "scores", scores: [{ id: "d", score: 3 }], missing: ["e"] },
  { type: "error", code: "timeout", message: "took too long" },
];

function normalise(frames: Frame[]): unknown {
  // Buffer (Node's decode of msgpack bin) and Uint8Array compare equal once both are plain arrays.
  return frames.map((f) => (f.type === "qnet" ? { ...f, qnet: Array.from(f.qnet) } : f));
}

describe("frames", () => {
  const bytes = concatBytes(FRAMES.map(encodeFrame));

  it("round-trips every frame kind in one chunk", () => {
    const decoder = new FrameDecoder();
    expect(normalise(decoder.push(bytes))).toEqual(normalise(FRAMES));
    decoder.end();
  });

  it("decodes the same frames for any chunking", () => {
    for (const size of [1, 2, 3, 7, 64, 1000, 65_536]) {
      const decoder = new FrameDecoder();
      const out: Frame[] = [];
      for (let at = 0; at < bytes.length; at += size) out.push(...decoder.push(bytes.subarray(at, at + size)));
      decoder.end();
      expect(normalise(out)).toEqual(normalise(FRAMES));
    }
  });

  it("decodes a ReadableStream", async () => {
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < bytes.length; at += 999) controller.enqueue(bytes.slice(at, at + 999));
        controller.close();
      },
    });
    const out: Frame[] = [];
    for await (const frame of decodeFrames(stream)) out.push(frame);
    expect(out.map((f) => f.type)).toEqual(FRAMES.map((f) => f.type));
  });

  it("reports a stream cut inside a frame", () => {
    const decoder = new FrameDecoder();
    expect(decoder.push(bytes.subarray(0, 100))).toEqual([]);
    expect(() => decoder.end()).toThrow(/stream ended inside a frame: 100 bytes/);
  });

  it("gives clear errors for invalid msgpack and invalid frames", () => {
    expect(() => new FrameDecoder().push(new Uint8Array([0xc1]))).toThrow(FrameDecodeError);
    expect(() => new FrameDecoder().push(new Uint8Array([0xc1]))).toThrow(/invalid msgpack: byte 0xc1 at offset 0/);
    const packr = new Packr({ useRecords: false });
    expect(() => new FrameDecoder().push(packr.pack({ type: "nope" }))).toThrow(/invalid frame: type:/);
    expect(() => new FrameDecoder().push(packr.pack({ type: "progress", shard: "s", iteration: 1, hits: [{ id: 1 }] }))).toThrow(
      /invalid frame: hits\.0\.id/,
    );
    expect(() => new FrameDecoder().push(packr.pack(42))).toThrow(/invalid frame/);
  });

  it("bounds the bytes buffered for one frame", () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1000 });
    const big = encodeFrame({ type: "qnet", qnet: new Uint8Array(5000) });
    expect(() => decoder.push(big.subarray(0, 2000))).toThrow(/larger than 1000 bytes/);
  });

  it("finds value ends for every msgpack type", () => {
    const packr = new Packr({ useRecords: false, moreTypes: true });
    const values = [null, true, 1, -1, 200, -200, 70_000, 2 ** 40, 1.5, "s", "x".repeat(40), "x".repeat(300), "x".repeat(70_000),
      [1, [2, [3]]], { a: { b: [1, 2] } }, new Uint8Array(10), new Uint8Array(300), new Float32Array(3), new Float32Array(100),
      Array.from({ length: 20 }, (_, i) => i), Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i]))];
    for (const v of values) {
      const packed = packr.pack(v);
      expect(msgpackValueEnd(packed, 0, packed.length)).toBe(packed.length);
      expect(msgpackValueEnd(packed, 0, packed.length - 1)).toBe(-1);
    }
  });
});
