import { describe, expect, it } from "vitest";
import { crc32 } from "./crc32.ts";
import { IndexFormatError } from "./errors.ts";
import { batchHash, canonicalJson, decodeWalBatch, encodeWalBatch, WAL_MAGIC, type WalBatch } from "./wal.ts";

function sampleBatch(): WalBatch {
  const upsert = [
    { id: "a", fields: { text: "first doc", title: "A", meta: { z: 1, a: [1, 2] } } },
    { id: "b", fields: { text: "second doc" } },
  ];
  return {
    tenant: "acme",
    index: "docs",
    seq: 7,
    batchHash: batchHash(upsert, ["gone"]),
    createdAt: "2026-12-01T00:00:00.000Z",
    modelId: "m".repeat(64).replace(/m/g, "a"),
    dim: 3,
    upsert,
    embeddings: Float32Array.of(0.5, -1, 2, 3.25, 0, -0.125),
    delete: ["gone"],
  };
}

function refused(bytes: Uint8Array): string {
  try {
    decodeWalBatch(bytes, "wal/000000000007.hwal");
  } catch (e) {
    expect(e).toBeInstanceOf(IndexFormatError);
    return (e as Error).message;
  }
  throw new Error("decoded a corrupt WAL object");
}

describe("WAL object", () => {
  it("round-trips every field, embeddings bit for bit", () => {
    const batch = sampleBatch();
    const bytes = encodeWalBatch(batch);
    expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe(WAL_MAGIC);
    const back = decodeWalBatch(bytes);
    expect(back).toEqual({ ...batch, embeddings: back.embeddings });
    expect([...back.embeddings]).toEqual([...batch.embeddings]);
  });

  it("round-trips an empty batch (a seal)", () => {
    const seal: WalBatch = { ...sampleBatch(), upsert: [], embeddings: new Float32Array(0), delete: [], batchHash: batchHash([], []) };
    expect(decodeWalBatch(encodeWalBatch(seal))).toMatchObject({ upsert: [], delete: [], seq: 7 });
  });

  it("refuses embeddings that do not match the documents", () => {
    expect(() => encodeWalBatch({ ...sampleBatch(), embeddings: new Float32Array(5) })).toThrow(IndexFormatError);
  });

  it("detects corruption: a flipped body byte, a wrong magic, truncation, a forged length", () => {
    const good = encodeWalBatch(sampleBatch());
    const flipped = good.slice();
    flipped[good.length - 5]! ^= 0x40;
    expect(refused(flipped)).toMatch(/CRC-32 mismatch/);
    const magic = good.slice();
    magic[3] = 0x41;
    expect(refused(magic)).toMatch(/not a WAL object/);
    expect(refused(good.subarray(0, good.length - 1))).toMatch(/body length/);
    expect(refused(good.subarray(0, 10))).toMatch(/too short/);
  });

  it("refuses a body that checksums but breaks the schema", () => {
    // A valid preamble around a msgpack body with a wrong format tag: only the schema can catch it.
    const good = encodeWalBatch(sampleBatch());
    const body = good.slice(16);
    const tag = new TextEncoder().encode("hypencoder.wal");
    const at = body.findIndex((_, i) => tag.every((t, j) => body[i + j] === t));
    body[at] = "x".charCodeAt(0);
    const forged = new Uint8Array(good.length);
    forged.set(good.subarray(0, 16));
    forged.set(body, 16);
    new DataView(forged.buffer).setUint32(12, crc32(body) >>> 0, true);
    expect(refused(forged)).toMatch(/format/);
  });
});

describe("batchHash", () => {
  it("is canonical: key order at any depth does not matter, document and delete order do", () => {
    const a = batchHash([{ id: "x", fields: { text: "t", n: { b: 1, a: 2 } } }], ["d1", "d2"]);
    const b = batchHash([{ id: "x", fields: { n: { a: 2, b: 1 }, text: "t" } }], ["d1", "d2"]);
    expect(a).toBe(b);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(batchHash([{ id: "x", fields: { text: "t", n: { b: 1, a: 2 } } }], ["d2", "d1"])).not.toBe(a);
    expect(batchHash([{ id: "x", fields: { text: "u", n: { b: 1, a: 2 } } }], ["d1", "d2"])).not.toBe(a);
    expect(canonicalJson({ b: [{ d: 1, c: 2 }], a: null })).toBe('{"a":null,"b":[{"c":2,"d":1}]}');
  });
});
