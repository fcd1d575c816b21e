import { describe, expect, it } from "vitest";
import { halfToFloat32Array, roundToHalf } from "../qnet/half.ts";
import { crc32 } from "./crc32.ts";
import { IndexFormatError } from "./errors.ts";
import { SHARD_ALIGNMENT, SHARD_PREAMBLE_BYTES, decodeShard, encodeShard, type ShardDtype, type ShardInput } from "./format.ts";
import { sha256Hex } from "./sha256.ts";

/** A deterministic shard: a ring graph (each node points at its next `degree` rows). */
function makeInput(docCount: number, dim: number, dtype: ShardDtype, degree = 3): ShardInput {
  const embeddings = new Float32Array(docCount * dim);
  for (let i = 0; i < embeddings.length; i++) embeddings[i] = Math.sin(i * 0.37) * 3;
  const deg = Math.min(degree, Math.max(docCount - 1, 0));
  const offsets = new Uint32Array(docCount + 1);
  const neighbors: number[] = [];
  for (let r = 0; r < docCount; r++) {
    for (let k = 1; k <= deg; k++) neighbors.push((r + k) % docCount);
    offsets[r + 1] = neighbors.length;
  }
  return {
    ids: Array.from({ length: docCount }, (_, i) => `doc-${i}`),
    fields: Array.from({ length: docCount }, (_, i) => ({ text: `text ${i} ✓`, title: `T${i}`, metadata: { n: i, tags: ["a", "b"] } })),
    embeddings,
    dim,
    dtype,
    graph: { offsets, neighbors: Uint32Array.from(neighbors), degree },
  };
}

function expectRefused(fn: () => unknown, message: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, "expected the shard to be refused").toBeInstanceOf(IndexFormatError);
  expect((err as Error).message).toMatch(message);
}

/** Re-writes the header JSON (fixing its CRC) to test checks that come after the header CRC. */
function withHeader(bytes: Uint8Array, edit: (h: Record<string, any>) => void): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const len = view.getUint32(12, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(SHARD_PREAMBLE_BYTES, SHARD_PREAMBLE_BYTES + len)));
  edit(header);
  const json = new TextEncoder().encode(JSON.stringify(header).padEnd(len, " "));
  expect(json.length).toBe(len);
  const out = bytes.slice();
  out.set(json, SHARD_PREAMBLE_BYTES);
  new DataView(out.buffer).setUint32(16, crc32(json), true);
  return out;
}

describe("shard format", () => {
  it.each(["float32", "float16"] as const)("round-trips a %s shard", (dtype) => {
    const input = makeInput(50, 8, dtype);
    const bytes = encodeShard(input);
    const shard = decodeShard(bytes, { bytes: bytes.length, sha256: sha256Hex(bytes) });
    expect(shard).toMatchObject({ docCount: 50, dim: 8, dtype, degree: 3, byteLength: bytes.length });
    const widened = shard.embeddings instanceof Uint16Array ? halfToFloat32Array(shard.embeddings) : shard.embeddings;
    const want = dtype === "float16" ? input.embeddings.map(roundToHalf) : input.embeddings;
    expect(Array.from(widened)).toEqual(Array.from(want));
    expect(shard.embeddings).toBeInstanceOf(dtype === "float16" ? Uint16Array : Float32Array);
    expect(Array.from(shard.offsets)).toEqual(Array.from(input.graph.offsets));
    expect(Array.from(shard.neighbors)).toEqual(Array.from(input.graph.neighbors));
    expect(shard.ids).toEqual(input.ids);
    for (const i of [0, 17, 49]) expect(shard.fields(i)).toEqual(input.fields[i]);
    expect(() => shard.fields(50)).toThrow(RangeError);
  });

  it("round-trips an empty shard and a single document without neighbours", () => {
    const empty = decodeShard(encodeShard(makeInput(0, 4, "float32")));
    expect(empty.docCount).toBe(0);
    expect(empty.ids).toEqual([]);
    const one = decodeShard(encodeShard(makeInput(1, 4, "float16")));
    expect(one.fields(0)).toEqual({ text: "text 0 ✓", title: "T0", metadata: { n: 0, tags: ["a", "b"] } });
    expect(Array.from(one.offsets)).toEqual([0, 0]);
  });

  it("returns zero-copy views on 64-byte-aligned sections", () => {
    const bytes = encodeShard(makeInput(20, 16, "float32"));
    const shard = decodeShard(bytes);
    for (const a of [shard.embeddings, shard.offsets, shard.neighbors]) {
      expect(a.buffer).toBe(bytes.buffer);
      expect(a.byteOffset % SHARD_ALIGNMENT).toBe(0);
    }
    // A view: changing the file bytes under it changes what it reads.
    const e0 = shard.embeddings[0];
    new Float32Array(bytes.buffer, shard.embeddings.byteOffset, 1)[0] = 42;
    expect(shard.embeddings[0]).toBe(42);
    expect(e0).not.toBe(42);
  });

  it("reads a shard that starts at an unaligned offset (one copy)", () => {
    const bytes = encodeShard(makeInput(5, 3, "float16"));
    const padded = new Uint8Array(bytes.length + 3);
    padded.set(bytes, 3);
    const shard = decodeShard(padded.subarray(3));
    expect(shard.ids).toEqual(["doc-0", "doc-1", "doc-2", "doc-3", "doc-4"]);
    expect(shard.embeddings.byteOffset % SHARD_ALIGNMENT).toBe(0);
  });

  it("refuses a shard with any single byte flipped, anywhere", () => {
    const bytes = encodeShard(makeInput(12, 4, "float16"));
    for (let i = 0; i < bytes.length; i++) {
      const bad = bytes.slice();
      bad[i] ^= 0x01 << (i % 8);
      expectRefused(() => decodeShard(bad), /^shard: /);
      bad[i] ^= 0xff; // a whole-byte change too
      expectRefused(() => decodeShard(bad), /^shard: /);
    }
  });

  it("detects a corrupt byte through the manifest's sha256 before anything else", () => {
    const bytes = encodeShard(makeInput(4, 4, "float32"));
    const sha256 = sha256Hex(bytes);
    const bad = bytes.slice();
    bad[bad.length - 1] ^= 0x10;
    expectRefused(() => decodeShard(bad, { sha256 }, { label: "tenants/t/x.hxs" }), /^shard tenants\/t\/x\.hxs: sha256 mismatch/);
  });

  it("refuses truncated and over-long files", () => {
    const bytes = encodeShard(makeInput(12, 4, "float32"));
    for (const n of [0, 7, 20, SHARD_PREAMBLE_BYTES + 5, 200, bytes.length - 1]) {
      expectRefused(() => decodeShard(bytes.subarray(0, n)), /truncated|magic/);
    }
    expectRefused(() => decodeShard(bytes.subarray(0, bytes.length - 1), { bytes: bytes.length }), /size mismatch: expected \d+ bytes, got \d+ \(truncated\)/);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expectRefused(() => decodeShard(longer), /1 unexpected bytes after the end/);
  });

  it("refuses a wrong magic and a future version with a clear message", () => {
    const bytes = encodeShard(makeInput(3, 2, "float32"));
    const wrongMagic = bytes.slice();
    wrongMagic.set(new TextEncoder().encode("PK\x03\x04"), 0);
    expectRefused(() => decodeShard(wrongMagic), /bad magic: not a HYPXSHRD shard file/);
    const future = bytes.slice();
    new DataView(future.buffer).setUint32(8, 2, true);
    expectRefused(() => decodeShard(future), /unsupported shard format version 2; this reader reads version 1/);
  });

  it("refuses a header that is not JSON, or does not match the schema", () => {
    const bytes = encodeShard(makeInput(3, 2, "float32"));
    const len = new DataView(bytes.buffer).getUint32(12, true);
    const notJson = bytes.slice();
    const garbage = new TextEncoder().encode("{not json".padEnd(len, " "));
    notJson.set(garbage, SHARD_PREAMBLE_BYTES);
    new DataView(notJson.buffer).setUint32(16, crc32(garbage), true);
    expectRefused(() => decodeShard(notJson), /header is not valid UTF-8 JSON/);
    expectRefused(() => decodeShard(withHeader(bytes, (h) => (h.dtype = "float64"))), /bad header: dtype/);
    expectRefused(() => decodeShard(withHeader(bytes, (h) => delete h.sections.ids)), /bad header: sections\.ids/);
    const badLength = bytes.slice();
    new DataView(badLength.buffer).setUint32(12, 0x7fffffff, true);
    expectRefused(() => decodeShard(badLength), /implausible header length/);
  });

  it("refuses sections that are out of bounds, misaligned, overlapping or the wrong size", () => {
    const bytes = encodeShard(makeInput(6, 2, "float32"));
    expectRefused(
      () => decodeShard(withHeader(bytes, (h) => (h.sections.fields.length += 64))),
      /section fields \(\d+ \+ \d+\) is out of bounds of the \d+-byte file/,
    );
    expectRefused(() => decodeShard(withHeader(bytes, (h) => (h.sections.ids.offset += 4))), /section ids offset \d+ is not 64-byte aligned/);
    expectRefused(() => decodeShard(withHeader(bytes, (h) => (h.sections.graphOffsets.offset = h.sections.embeddings.offset))), /overlaps/);
    expectRefused(() => decodeShard(withHeader(bytes, (h) => (h.dim = 3))), /section embeddings is 48 bytes, expected 72/);
    expectRefused(() => decodeShard(withHeader(bytes, (h) => (h.bytes += 1))), /truncated: header says/);
  });

  it("checks the graph and ids even when the content was verified elsewhere", () => {
    const input = makeInput(6, 2, "float32");
    input.graph.neighbors[0] = 6;
    expect(() => encodeShard(input)).toThrow(/graph neighbour 0 is row 6, not below docCount 6/);
    const bytes = encodeShard(makeInput(6, 2, "float32"));
    const { sections } = JSON.parse(new TextDecoder().decode(bytes.subarray(SHARD_PREAMBLE_BYTES, SHARD_PREAMBLE_BYTES + new DataView(bytes.buffer).getUint32(12, true))));
    const bad = bytes.slice();
    new DataView(bad.buffer).setUint32(sections.graphNeighbors.offset, 99, true);
    expectRefused(() => decodeShard(bad, {}, { contentVerified: true }), /graph neighbour 0 is row 99/);
    expectRefused(() => decodeShard(bad), /body CRC-32 mismatch/);
  });

  it("has an optional proxyIndex section: absent, empty or refused when it does not fit the shard", () => {
    const plain = encodeShard(makeInput(20, 4, "float16"));
    expect(decodeShard(plain).proxyIndex).toEqual(new Uint8Array(0));
    // An empty one writes no section: the file is byte-for-byte the one without.
    expect(encodeShard({ ...makeInput(20, 4, "float16"), proxyIndex: new Uint8Array(0) })).toEqual(plain);
    // Anything else must be a proxy index of exactly this shard (built ones: gpu-worker/src/index/proxy-index-reader.test.ts).
    expect(() => encodeShard({ ...makeInput(20, 4, "float16"), proxyIndex: new Uint8Array(200) })).toThrow(/proxyIndex: bad magic/);
    expect(() => encodeShard({ ...makeInput(20, 4, "float16"), proxyIndex: new Uint8Array(10) })).toThrow(/shorter than its 136-byte headers/);
  });

  it("stores build-time entry rows in an optional section that older shards simply lack", () => {
    const plain = encodeShard(makeInput(20, 4, "float16"));
    const headerOf = (bytes: Uint8Array) =>
      JSON.parse(new TextDecoder().decode(bytes.subarray(SHARD_PREAMBLE_BYTES, SHARD_PREAMBLE_BYTES + new DataView(bytes.buffer).getUint32(12, true))));
    expect(Object.keys(headerOf(plain).sections)).toEqual(["embeddings", "graphOffsets", "graphNeighbors", "ids", "fieldIndex", "fields"]);
    expect(decodeShard(plain).entryRows).toEqual(new Uint32Array(0));
    // An empty list writes no section: the file is byte-for-byte the one without.
    expect(encodeShard({ ...makeInput(20, 4, "float16"), entryRows: new Uint32Array(0) })).toEqual(plain);

    const withRows = encodeShard({ ...makeInput(20, 4, "float16"), entryRows: Uint32Array.of(7, 0, 19) });
    const { sections } = headerOf(withRows);
    expect(sections.entryRows).toEqual({ offset: expect.any(Number), length: 12 });
    expect(sections.entryRows.offset % SHARD_ALIGNMENT).toBe(0);
    expect(sections.entryRows.offset).toBeGreaterThanOrEqual(sections.fields.offset + sections.fields.length);
    const shard = decodeShard(withRows, { bytes: withRows.length, sha256: sha256Hex(withRows) });
    expect(Array.from(shard.entryRows)).toEqual([7, 0, 19]);
    expect(shard.entryRows.buffer).toBe(withRows.buffer); // a view, like the graph

    expect(() => encodeShard({ ...makeInput(20, 4, "float16"), entryRows: Uint32Array.of(20) })).toThrow(/entry row 0 is row 20, not below docCount 20/);
    expect(() => encodeShard({ ...makeInput(20, 4, "float16"), entryRows: Uint32Array.of(3, 3) })).toThrow(/entry row 1 repeats row 3/);
    const bad = withRows.slice();
    new DataView(bad.buffer).setUint32(sections.entryRows.offset + 4, 25, true);
    expectRefused(() => decodeShard(bad, {}, { contentVerified: true }), /entry row 1 is row 25, not below docCount 20/);
    expectRefused(() => decodeShard(bad), /body CRC-32 mismatch/);
    expectRefused(() => decodeShard(withHeader(withRows, (h) => (h.sections.entryRows.length = 6))), /section entryRows is 6 bytes, not a whole number of u32/);
    expectRefused(() => decodeShard(withHeader(withRows, (h) => (h.sections.entryRows.offset = h.sections.fields.offset))), /section entryRows .* overlaps/);
  });

  it("rejects inconsistent input when encoding", () => {
    const input = makeInput(4, 2, "float32");
    expect(() => encodeShard({ ...input, ids: ["a", "a", "b", "c"] })).toThrow(/duplicate document id "a"/);
    expect(() => encodeShard({ ...input, embeddings: new Float32Array(7) })).toThrow(/embeddings has 7 values, expected docCount × dim = 4 × 2/);
    expect(() => encodeShard({ ...input, graph: { ...input.graph, degree: 1 } })).toThrow(/graph row 0 has 3 neighbours, more than degree 1/);
    expect(() => encodeShard({ ...input, fields: [{}, {}, {}] })).toThrow(/4 ids but 3 field objects/);
  });
});
