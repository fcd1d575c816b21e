import { unzipSync, zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import type { Float32Tensor, TensorMap } from "../types.ts";
import { unpickle } from "./pickle.ts";
import { PickleWriter } from "./pickle-writer.ts";
import { encodeTorchZip, encodeTorchZipRaw, parseTorchZip } from "./torch-zip.ts";
import { encodeStoredZip, readZip } from "./zip.ts";

const range = (n: number, scale = 1) => Float32Array.from({ length: n }, (_, i) => (i + 1) * scale);

/** Fast exact comparison (vitest's deep equality is slow on large typed arrays). */
function expectSameTensor(actual: Float32Tensor | undefined, expected: Float32Tensor): void {
  expect(actual?.shape).toEqual(expected.shape);
  expect(Buffer.from(actual!.data.buffer, actual!.data.byteOffset, actual!.data.byteLength).equals(Buffer.from(expected.data.buffer))).toBe(true);
}

function stateDict(): TensorMap {
  return new Map([
    ["enc.weight", { shape: [3, 4], data: range(12, 0.5) }],
    ["enc.bias", { shape: [3], data: range(3, -1) }],
    ["big", { shape: [70000], data: range(70000) }], // sizes above 65535 use BININT / LONG paths
    ["scalar", { shape: [], data: Float32Array.from([7]) }],
  ]);
}

describe("torch zip", () => {
  it("round-trips a state dict, 64-byte aligned under archive/", () => {
    const bytes = encodeTorchZip(stateDict());
    const entries = readZip(bytes);
    expect([...entries.keys()]).toContain("archive/data.pkl");
    for (const data of entries.values()) expect(data.byteOffset % 64).toBe(0);
    const tensors = parseTorchZip(bytes);
    expect([...tensors.keys()]).toEqual([...stateDict().keys()]);
    for (const [name, t] of stateDict()) expectSameTensor(tensors.get(name), t);
  });

  it("round-trips F16 / BF16 / F64 storages", () => {
    for (const dtype of ["F16", "BF16", "F64"] as const) {
      const tensors = parseTorchZip(encodeTorchZip(stateDict(), { dtype }));
      expect(tensors.get("enc.weight")!.data).toEqual(range(12, 0.5)); // exactly representable
    }
  });

  it("writes two names over one storage and reads them as separate arrays", () => {
    const tensors = stateDict();
    tensors.set("tied.weight", { shape: [3, 4], data: range(12, 0.5) });
    const bytes = encodeTorchZip(tensors, { shareStorage: [["enc.weight", "tied.weight"]] });
    const storages = [...readZip(bytes).keys()].filter((n) => n.startsWith("archive/data/"));
    expect(storages).toHaveLength(4); // not 5: the tied tensor has no storage of its own
    const read = parseTorchZip(bytes);
    expect(read.get("tied.weight")).toEqual(read.get("enc.weight"));
    read.get("tied.weight")!.data[0] = 99;
    expect(read.get("enc.weight")!.data[0]).toBe(0.5);
  });

  it("refuses to share storage between differing tensors", () => {
    expect(() => encodeTorchZip(stateDict(), { shareStorage: [["enc.weight", "enc.bias"]] })).toThrow(/differ/);
  });

  it("materialises views with a storage offset and non-contiguous strides", () => {
    const storage = range(24); // 1..24
    const bytes = encodeTorchZipRaw(
      [{ key: "0", dtype: "F32", values: storage }],
      [
        { name: "whole", storage: "0", size: [4, 6] },
        { name: "row2", storage: "0", offset: 12, size: [6] },
        { name: "transposed", storage: "0", size: [6, 4], stride: [1, 6] },
        { name: "strided", storage: "0", offset: 1, size: [2, 3], stride: [12, 2] },
      ],
    );
    const t = parseTorchZip(bytes);
    expect(t.get("whole")!.data).toEqual(storage);
    expect([...t.get("row2")!.data]).toEqual([13, 14, 15, 16, 17, 18]);
    expect([...t.get("transposed")!.data.slice(0, 8)]).toEqual([1, 7, 13, 19, 2, 8, 14, 20]);
    expect(t.get("transposed")!.shape).toEqual([6, 4]);
    expect([...t.get("strided")!.data]).toEqual([2, 4, 6, 14, 16, 18]);
  });

  it("rejects a view that reaches past its storage", () => {
    const bytes = encodeTorchZipRaw([{ key: "0", dtype: "F32", values: range(4) }], [{ name: "x", storage: "0", offset: 2, size: [3] }]);
    expect(() => parseTorchZip(bytes)).toThrow(/tensor "x" .* reaches element 4 of a 4-element storage/);
  });

  it("reads any top folder name, deflated entries and a missing byteorder", () => {
    const small = stateDict();
    small.delete("big");
    const original = unzipSync(encodeTorchZip(small));
    const renamed: Record<string, Uint8Array> = {};
    for (const [name, data] of Object.entries(original)) {
      if (name.endsWith("/byteorder")) continue;
      renamed[name.replace(/^archive\//, "pytorch_model/")] = data;
    }
    const tensors = parseTorchZip(zipSync(renamed, { level: 6 }));
    for (const [name, t] of small) expectSameTensor(tensors.get(name), t);
  });

  it("reads big-endian storages", () => {
    const be = new Uint8Array(8);
    new DataView(be.buffer).setFloat32(0, 1.5, false);
    new DataView(be.buffer).setFloat32(4, -2, false);
    const files = unzipSync(encodeTorchZipRaw([{ key: "0", dtype: "F32", values: range(2) }], [{ name: "x", storage: "0", size: [2] }]));
    files["archive/data/0"] = be;
    files["archive/byteorder"] = new TextEncoder().encode("big");
    expect([...parseTorchZip(zipSync(files)).get("x")!.data]).toEqual([1.5, -2]);
  });

  it("refuses globals outside the allow-list", () => {
    const p = new PickleWriter();
    p.global("os", "system").mark().str("echo pwned").tuple().reduce();
    const pkl = p.finish();
    const bytes = encodeStoredZip([{ name: "archive/data.pkl", data: pkl }]);
    expect(() => parseTorchZip(bytes, "evil.bin")).toThrow(/evil\.bin: refusing to unpickle global os\.system/);
  });

  it("gives clear errors for non-zip and incomplete archives", () => {
    expect(() => parseTorchZip(Uint8Array.from([0x80, 2, 0x8a, 0x0a]), "old.bin")).toThrow(/legacy pre-1\.6 torch\.save format/);
    const bytes = encodeTorchZip(stateDict());
    expect(() => parseTorchZip(bytes.slice(0, bytes.length - 30), "cut.bin")).toThrow(/cut\.bin: .*(end-of-central-directory|truncated)/);
    const files = unzipSync(bytes);
    delete files["archive/data/1"];
    expect(() => parseTorchZip(zipSync(files, { level: 0 }), "m.bin")).toThrow(/storage file archive\/data\/1 is missing/);
  });
});

describe("pickle VM", () => {
  const noHooks = {
    findClass: (m: string, n: string) => {
      throw new Error(`no ${m}.${n}`);
    },
    persistentLoad: () => {
      throw new Error("no pid");
    },
  };
  it("decodes basic values", () => {
    const p = new PickleWriter();
    p.mark().int(-5).int(300).int(2 ** 40).int(-(2 ** 40)).bool(true).none().str("héllo").tuple();
    expect(unpickle(p.finish(), noHooks)).toEqual([-5, 300, 2 ** 40, -(2 ** 40), true, null, "héllo"]);
  });
  it("rejects unknown opcodes and truncated data", () => {
    expect(() => unpickle(Uint8Array.from([0x80, 2, 0x69]), noHooks)).toThrow(/byte 2: unsupported pickle opcode 0x69/);
    expect(() => unpickle(Uint8Array.from([0x80, 2, 0x58, 10, 0, 0, 0, 0x41]), noHooks)).toThrow(/truncated pickle/);
  });
});
