import { describe, expect, it } from "vitest";
import type { TensorMap } from "../types.ts";
import { bfloat16ToFloat, floatToBfloat16, floatToHalf, halfToFloat } from "./dtype.ts";
import { encodeSafetensors, parseSafetensors } from "./safetensors.ts";

function sample(): TensorMap {
  return new Map([
    ["a.weight", { shape: [2, 3], data: Float32Array.from([0, 1, -2, 0.5, 3.25, -1024]) }],
    ["b", { shape: [4], data: Float32Array.from([1e-3, -7.5, 65504, 0.1]) }],
    ["scalar", { shape: [], data: Float32Array.from([42]) }],
  ]);
}

/** A file with a hand-written header (and `dataBytes` of data), for corruption tests. */
function withHeader(header: unknown, dataBytes: number, headerText = JSON.stringify(header)): Uint8Array {
  const h = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  return out;
}

describe("safetensors", () => {
  it("round-trips F32 exactly, with metadata", () => {
    const bytes = encodeSafetensors(sample(), { metadata: { format: "pt" } });
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLen) % 8).toBe(0);
    const { tensors, metadata } = parseSafetensors(bytes);
    expect(metadata).toEqual({ format: "pt" });
    expect([...tensors.keys()]).toEqual(["a.weight", "b", "scalar"]);
    for (const [name, t] of sample()) {
      expect(tensors.get(name)!.shape).toEqual(t.shape);
      expect(tensors.get(name)!.data).toEqual(t.data);
    }
  });

  it.each(["F16", "BF16", "F64"] as const)("round-trips %s to float32 within its precision", (dtype) => {
    const { tensors } = parseSafetensors(encodeSafetensors(sample(), { dtype }));
    const round = { F16: (v: number) => halfToFloat(floatToHalf(v)), BF16: (v: number) => bfloat16ToFloat(floatToBfloat16(v)), F64: (v: number) => v }[dtype];
    for (const [name, t] of sample()) {
      const got = tensors.get(name)!;
      expect(got.shape).toEqual(t.shape);
      expect([...got.data]).toEqual([...t.data].map((v) => Math.fround(round(v))));
      // Sanity: within the format's relative precision.
      const tol = { F16: 1e-3, BF16: 8e-3, F64: 0 }[dtype];
      t.data.forEach((v, i) => expect(Math.abs(got.data[i] - v)).toBeLessThanOrEqual(Math.abs(v) * tol));
    }
  });

  it("converts half and bfloat16 edge cases", () => {
    expect(halfToFloat(floatToHalf(65504))).toBe(65504);
    expect(halfToFloat(floatToHalf(1e6))).toBe(Infinity);
    expect(halfToFloat(floatToHalf(2 ** -24))).toBe(2 ** -24); // smallest subnormal
    expect(halfToFloat(floatToHalf(1 + 2 ** -11))).toBe(1); // tie rounds to even
    expect(Number.isNaN(halfToFloat(floatToHalf(NaN)))).toBe(true);
    expect(bfloat16ToFloat(floatToBfloat16(1 + 2 ** -8))).toBe(1); // tie rounds to even
    expect(Number.isNaN(bfloat16ToFloat(floatToBfloat16(NaN)))).toBe(true);
  });

  it("reads integer tensors such as position_ids", () => {
    const data = new Uint8Array(24);
    const v = new DataView(data.buffer);
    [0, 1, 511].forEach((x, i) => v.setBigInt64(i * 8, BigInt(x), true));
    const file = withHeader({ "embeddings.position_ids": { dtype: "I64", shape: [1, 3], data_offsets: [0, 24] } }, 24);
    file.set(data, file.length - 24);
    expect([...parseSafetensors(file).tensors.get("embeddings.position_ids")!.data]).toEqual([0, 1, 511]);
  });

  describe("rejects corrupt files with a clear error", () => {
    const good = encodeSafetensors(sample());
    it.each<[string, Uint8Array, RegExp]>([
      ["too short", new Uint8Array(5), /too short/],
      ["header length beyond file", good.slice(0, 40), /header length \d+ runs past the end/],
      ["invalid JSON", withHeader(null, 0, "{not json"), /not valid UTF-8 JSON/],
      ["header not an object", withHeader([1, 2], 0), /not a JSON object/],
      ["truncated data", good.slice(0, good.length - 4), /run past the .*data section \(truncated file\?\)/],
      [
        "unknown dtype",
        withHeader({ x: { dtype: "F8_E4M3", shape: [1], data_offsets: [0, 1] } }, 1),
        /"x" has unknown or unsupported dtype "F8_E4M3"/,
      ],
      [
        "size not matching shape",
        withHeader({ x: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, 8),
        /"x" has 8 bytes but F32 \[3\] needs 12/,
      ],
      [
        "overlapping tensors",
        withHeader(
          {
            x: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
            y: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
          },
          12,
        ),
        /"x" and "y" have overlapping data_offsets/,
      ],
      [
        "begin after end",
        withHeader({ x: { dtype: "F32", shape: [0], data_offsets: [8, 4] } }, 8),
        /begin after end/,
      ],
      ["missing shape", withHeader({ x: { dtype: "F32", data_offsets: [0, 4] } }, 4), /"x" "shape" is not an array/],
    ])("%s", (_label, bytes, message) => {
      expect(() => parseSafetensors(bytes, "m.safetensors")).toThrow(message);
      expect(() => parseSafetensors(bytes, "m.safetensors")).toThrow(/^m\.safetensors: /);
    });
  });
});
