import { Packr, Unpackr } from "msgpackr/index-no-eval";
import { describe, expect, it } from "vitest";
import { scoreQNet } from "./evaluate.ts";
import { roundToHalf } from "./half.ts";
import type { QNet } from "./types.ts";
import { QNetWireError, decodeQNet, encodeQNet, qnetFromWire, qnetWireSchema } from "./wire.ts";

function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function randomNet(dims = [8, 8, 8, 1], seed = 7): QNet {
  const rand = seededRandom(seed);
  const fill = (n: number) => Float32Array.from({ length: n }, () => rand() * 3);
  return {
    dims,
    activation: "gelu",
    doLayerNorm: true,
    doResidual: true,
    doResidualOnLast: false,
    layerNormBeforeResidual: false,
    weights: dims.slice(0, -1).map((d, i) => fill(d * dims[i + 1])),
    biases: dims.slice(1, -1).map((d) => fill(d)),
  };
}

// A plain encoder for hand-made (possibly invalid) wire objects, configured like wire.ts.
const rawPackr = new Packr({ useRecords: false, moreTypes: true });
const pack = (value: unknown): Uint8Array => rawPackr.pack(value);

/** A valid wire object for randomNet([4, 4, 1]) with `overrides` applied. */
function wireObject(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const q = randomNet([4, 4, 1]);
  return {
    format: "hypencoder.qnet",
    version: 1,
    dims: q.dims,
    activation: q.activation,
    doLayerNorm: q.doLayerNorm,
    doResidual: q.doResidual,
    doResidualOnLast: q.doResidualOnLast,
    layerNormBeforeResidual: q.layerNormBeforeResidual,
    dtype: "float32",
    weights: q.weights,
    biases: q.biases,
    ...overrides,
  };
}

function expectDecodeError(value: unknown, message: string | RegExp): void {
  const bytes = value instanceof Uint8Array ? value : pack(value);
  let error: unknown;
  try {
    decodeQNet(bytes);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(QNetWireError);
  if (typeof message === "string") expect((error as Error).message).toBe(message);
  else expect((error as Error).message).toMatch(message);
}

describe("encodeQNet / decodeQNet round trip", () => {
  it("float32 is bit-exact and decodes to Float32Arrays", () => {
    const q = randomNet();
    const bytes = encodeQNet(q);
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(bytes.byteOffset).toBe(0);
    expect(bytes.buffer.byteLength).toBe(bytes.length); // owns exactly its bytes
    const back = decodeQNet(bytes);
    expect(back).toEqual(q);
    for (const a of [...back.weights, ...back.biases]) expect(a).toBeInstanceOf(Float32Array);
  });

  it("keeps NaN, ±Infinity and -0 in float32", () => {
    const q = randomNet([2, 2, 1]);
    q.weights[0] = new Float32Array([NaN, Infinity, -Infinity, -0]);
    const back = decodeQNet(encodeQNet(q));
    expect(Array.from(back.weights[0])).toEqual([NaN, Infinity, -Infinity, -0]);
    expect(Object.is(back.weights[0][3], -0)).toBe(true);
  });

  it("float16 rounds each value to the nearest half and stays within half precision", () => {
    const q = randomNet();
    const bytes = encodeQNet(q, { dtype: "float16" });
    expect(bytes.length).toBeLessThan(encodeQNet(q).length);
    const back = decodeQNet(bytes);
    expect(back.dims).toEqual(q.dims);
    q.weights.forEach((w, i) => {
      for (let k = 0; k < w.length; k++) {
        expect(back.weights[i][k]).toBe(roundToHalf(w[k]));
        // Relative error of a normal half is at most 2^-11 (values here are ≥ 2^-14 or 0).
        expect(Math.abs(back.weights[i][k] - w[k])).toBeLessThanOrEqual(Math.abs(w[k]) * 2 ** -11 + 2 ** -25);
      }
    });
    q.biases.forEach((b, j) => expect(Array.from(back.biases[j])).toEqual(Array.from(b, roundToHalf)));
    // Scores move only by half-precision noise.
    const emb = Float32Array.from({ length: 3 * 8 }, seededRandom(3));
    const a = scoreQNet(q, emb);
    const b = scoreQNet(back, emb);
    for (let r = 0; r < 3; r++) expect(Math.abs(a[r] - b[r])).toBeLessThan(0.05 * Math.max(1, Math.abs(a[r])));
  });

  it("writes the documented plain-msgpack map, with Uint16Array half bits for float16", () => {
    const q = randomNet([4, 4, 1]);
    const wire = new Unpackr({ useRecords: false, moreTypes: true }).unpack(encodeQNet(q, { dtype: "float16" }));
    expect(Object.keys(wire)).toEqual([
      "format",
      "version",
      "dims",
      "activation",
      "doLayerNorm",
      "doResidual",
      "doResidualOnLast",
      "layerNormBeforeResidual",
      "dtype",
      "weights",
      "biases",
    ]);
    expect(wire).toMatchObject({ format: "hypencoder.qnet", version: 1, dims: [4, 4, 1], dtype: "float16" });
    expect(wire.weights[0]).toBeInstanceOf(Uint16Array);
    expect(wire.biases[0]).toBeInstanceOf(Uint16Array);
    expect(qnetWireSchema.safeParse(wire).success).toBe(true);
  });

  it("pins the exact bytes of a tiny net (typed arrays as ext 0x74, little-endian)", () => {
    const q: QNet = {
      dims: [1, 1, 1],
      activation: "relu",
      doLayerNorm: false,
      doResidual: false,
      doResidualOnLast: false,
      layerNormBeforeResidual: false,
      weights: [new Float32Array([1]), new Float32Array([-2])],
      biases: [new Float32Array([0.5])],
    };
    // The byte-for-byte example of shared/FORMATS.md ("Example bytes").
    const documented = [
      "de000b",
      "a6666f726d6174af687970656e636f6465722e716e6574",
      "a776657273696f6e01",
      "a464696d7393010101",
      "aa61637469766174696f6ea472656c75",
      "ab646f4c617965724e6f726dc2",
      "aa646f526573696475616cc2",
      "b0646f526573696475616c4f6e4c617374c2",
      "b76c617965724e6f726d4265666f7265526573696475616cc2",
      "a56474797065a7666c6f61743136",
      "a77765696768747392" + "c7037404003c" + "c703740400c0", // ext8 0x74 code 4: 0x3c00 = 1, 0xc000 = -2 (LE)
      "a662696173657391" + "c7037404" + "0038", // 0x3800 = 0.5
    ].join("");
    const bytes = encodeQNet(q, { dtype: "float16" });
    expect(bytes.length).toBe(177);
    expect(Buffer.from(bytes).toString("hex")).toBe(documented);
    expect(decodeQNet(Buffer.from(documented, "hex"))).toEqual(q);
    const hex32 = Buffer.from(encodeQNet(q)).toString("hex");
    // float32 1.0 = 0x3f800000 → bytes 00 00 80 3f, typed-array code 7 = Float32Array
    expect(hex32).toContain("c70574070000803f");
  });

  it("accepts a net with exactly one hidden layer, and ignores unknown keys", () => {
    const q = qnetFromWire(wireObject({ comment: "future optional field" }));
    expect(q.dims).toEqual([4, 4, 1]);
    expect(q).not.toHaveProperty("comment");
    expect(decodeQNet(Buffer.from(pack(wireObject())))).toEqual(q); // Node Buffers are fine too
  });
});

describe("decodeQNet rejects", () => {
  it("truncated bytes", () => {
    const bytes = encodeQNet(randomNet());
    expectDecodeError(bytes.subarray(0, bytes.length - 10), /^q-net: truncated msgpack data \(\d+ bytes\): Unexpected end/);
    expectDecodeError(bytes.subarray(0, 5), /^q-net: truncated msgpack data/);
    expectDecodeError(new Uint8Array(0), "q-net: no bytes to decode");
  });

  it("invalid msgpack and trailing bytes", () => {
    // ext8, 2 bytes, type 0x74 (typed array) with unknown typed-array code 99
    expectDecodeError(new Uint8Array([0xc7, 0x02, 0x74, 0x63, 0x00]), /^q-net: invalid msgpack: .*code 99/);
    // a Float32Array payload of 3 bytes (msgpackr reports this RangeError as incomplete data)
    expectDecodeError(new Uint8Array([0xc7, 0x04, 0x74, 0x07, 1, 2, 3]), /^q-net: truncated msgpack data \(7 bytes\): .*multiple of 4/);
    const bytes = encodeQNet(randomNet());
    const extra = new Uint8Array(bytes.length + 1);
    extra.set(bytes);
    expectDecodeError(extra, "q-net: trailing bytes after the msgpack message");
  });

  it("a message that is not a map", () => {
    expectDecodeError(42, /^q-net: .*expected object/);
  });

  it("wrong format or version", () => {
    expectDecodeError(wireObject({ format: "hypencoder.index" }), 'q-net format: expected format "hypencoder.qnet", got "hypencoder.index"');
    expectDecodeError(wireObject({ version: 2 }), "q-net version: unsupported version 2; this decoder reads version 1");
    expectDecodeError(wireObject({ version: undefined }), /^q-net version: unsupported version undefined/);
  });

  it("unknown activation or dtype", () => {
    expectDecodeError(
      wireObject({ activation: "swish" }),
      'q-net activation: unknown activation "swish" (expected one of relu, gelu, tanh, sigmoid, leaky_relu)',
    );
    expectDecodeError(wireObject({ dtype: "bfloat16" }), 'q-net dtype: expected dtype "float32" or "float16", got "bfloat16"');
  });

  it("wrong array lengths and counts", () => {
    const w = wireObject();
    const weights = [...(w.weights as Float32Array[])];
    weights[1] = new Float32Array(12);
    expectDecodeError({ ...w, weights }, "q-net weights[1]: expected 4 float32 values, got 12");
    expectDecodeError(
      wireObject({ biases: [new Float32Array(3)] }),
      "q-net biases[0]: expected 4 float32 values, got 3",
    );
    expectDecodeError(
      wireObject({ weights: (w.weights as Float32Array[]).slice(0, 1) }),
      "q-net weights: expected 2 arrays for dims [4, 4, 1], got 1",
    );
    const half = { ...w, dtype: "float16", weights: [new Uint16Array(16), new Uint16Array(5)], biases: [new Uint16Array(4)] };
    expectDecodeError(half, "q-net weights[1]: expected 4 float16 values, got 5");
  });

  it("plain number arrays instead of typed arrays (not converted)", () => {
    const w = wireObject();
    expectDecodeError(
      { ...w, biases: [Array.from(w.biases as Float32Array[])[0]].map((b) => Array.from(b)) },
      "q-net biases[0]: expected a Float32Array or Uint16Array (msgpack ext type 0x74), got a plain array of 4 elements",
    );
  });

  it("typed arrays that do not match dtype", () => {
    expectDecodeError(
      wireObject({ dtype: "float16" }),
      /^q-net weights\[0\]: dtype is float16, so expected a Uint16Array, got a Float32Array of 16 elements/,
    );
    expectDecodeError(
      wireObject({ weights: [new Uint16Array(16), new Float32Array(4)] }),
      "q-net weights[0]: dtype is float32, so expected a Float32Array, got a Uint16Array of 16 elements",
    );
  });

  it("a net without a hidden layer, bad dims and inconsistent residual dims", () => {
    expectDecodeError(
      wireObject({ dims: [4, 1], weights: [new Float32Array(4)], biases: [] }),
      "q-net dims: need at least one hidden layer, i.e. at least 3 dims, got [4, 1]",
    );
    expectDecodeError(wireObject({ dims: [4, 4, 2] }), "q-net dims[2]: the last dim is the score and must be 1, got 2");
    expectDecodeError(wireObject({ dims: [4, 0, 1] }), /^q-net dims\[1\]: expected an integer in 1\.\.65536, got 0/);
    expectDecodeError(wireObject({ dims: [4, 1.5, 1] }), /^q-net dims\[1\]: expected an integer in 1\.\.65536, got 1.5/);
    expectDecodeError(wireObject({ dims: [70000, 4, 1] }), /^q-net dims\[0\]: expected an integer in 1\.\.65536, got 70000/);
    expectDecodeError(
      wireObject({ dims: [2, 4, 1], doResidual: true, doResidualOnLast: true, weights: [new Float32Array(8), new Float32Array(4)] }),
      "q-net dims: hidden layer 0 has a residual connection, so dims[0] and dims[1] must be equal, got 2 and 4",
    );
    // Without a residual on the last (here only) layer, differing dims are fine.
    expect(() =>
      qnetFromWire(wireObject({ dims: [2, 4, 1], doResidual: true, doResidualOnLast: false, weights: [new Float32Array(8), new Float32Array(4)] })),
    ).not.toThrow();
  });

  it("wrongly typed flags, listing several problems at once", () => {
    expectDecodeError(
      wireObject({ doLayerNorm: "yes", doResidual: 1 }),
      /^q-net doLayerNorm: .*expected boolean.*; q-net doResidual: .*expected boolean/,
    );
  });
});

describe("encodeQNet", () => {
  it("refuses malformed q-nets and unknown dtypes", () => {
    const q = randomNet();
    expect(() => encodeQNet({ ...q, biases: q.biases.slice(1) })).toThrow(QNetWireError);
    expect(() => encodeQNet({ ...q, biases: q.biases.slice(1) })).toThrow(/q-net biases: expected 2 arrays/);
    expect(() => encodeQNet(q, { dtype: "int8" as "float16" })).toThrow(/unknown dtype "int8"/);
  });
});
