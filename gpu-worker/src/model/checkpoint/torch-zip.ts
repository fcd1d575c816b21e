/**
 * PyTorch's zip checkpoint format (torch.save since 1.6), e.g. HF `pytorch_model.bin`.
 *
 * The zip has one top folder (any name: "archive/", "pytorch_model/", …) holding `data.pkl` (a pickled
 * state dict), `data/<key>` (one raw storage per key), `version` and optionally `byteorder`.
 * Tensors in data.pkl are `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)` calls
 * whose storage is a persistent id `('storage', <StorageClass>, key, location, numel)`.
 * Views may share a storage (tied weights), start at an offset and be strided: each tensor is
 * materialised as its own contiguous float32 array.
 */
import { readFile, writeFile } from "node:fs/promises";
import type { TensorMap } from "../types.ts";
import { decodeToFloat32, encodeFromFloat32, itemSize, shapeSize, type Dtype, type FloatDtype } from "./dtype.ts";
import { unpickle } from "./pickle.ts";
import { PickleWriter } from "./pickle-writer.ts";
import { checkTensor } from "./safetensors.ts";
import { encodeStoredZip, readZip } from "./zip.ts";

export class TorchCheckpointError extends Error {
  override name = "TorchCheckpointError";
}

/** torch storage classes (module "torch") by the dtype they hold. */
const STORAGE_CLASSES: Record<string, Dtype> = {
  DoubleStorage: "F64",
  FloatStorage: "F32",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};
const STORAGE_CLASS_OF: Record<FloatDtype, string> = {
  F64: "DoubleStorage",
  F32: "FloatStorage",
  F16: "HalfStorage",
  BF16: "BFloat16Storage",
};
/** torch dtype objects (module "torch"); allowed because newer pickles may reference them. */
const TORCH_DTYPES: Record<string, Dtype> = {
  float64: "F64",
  double: "F64",
  float32: "F32",
  float: "F32",
  float16: "F16",
  half: "F16",
  bfloat16: "BF16",
  int64: "I64",
  long: "I64",
  int32: "I32",
  int: "I32",
  int16: "I16",
  short: "I16",
  int8: "I8",
  uint8: "U8",
  bool: "BOOL",
};

/** What findClass returns for a storage class or dtype: inert markers, not callables. */
class StorageType {
  constructor(readonly dtype: Dtype) {}
}
class TorchDtype {
  constructor(readonly dtype: Dtype) {}
}

class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: Dtype,
    readonly numel: number,
  ) {}
}

class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}

function isNatArray(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((v) => Number.isSafeInteger(v) && v >= 0);
}

function rebuildTensor(storage: unknown, offset: unknown, size: unknown, stride: unknown): TensorRef {
  if (!(storage instanceof StorageRef)) {
    throw new TorchCheckpointError("_rebuild_tensor_v2: first argument is not a storage");
  }
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) {
    throw new TorchCheckpointError(`_rebuild_tensor_v2: bad storage offset ${String(offset)}`);
  }
  if (!isNatArray(size) || !isNatArray(stride) || size.length !== stride.length) {
    throw new TorchCheckpointError("_rebuild_tensor_v2: size and stride must be equal-length tuples of naturals");
  }
  return new TensorRef(storage, offset as number, [...size], [...stride]);
}

/** The allow-list. Anything not here is refused: unpickling must never run arbitrary code. */
function findClass(module: string, name: string): unknown {
  if (module === "collections" && name === "OrderedDict") {
    return (...args: unknown[]) => {
      if (args.length !== 0) throw new TorchCheckpointError("OrderedDict(...) with arguments is not supported");
      return new Map();
    };
  }
  if (module === "torch._utils" && name === "_rebuild_tensor_v2") {
    return (storage: unknown, offset: unknown, size: unknown, stride: unknown) =>
      rebuildTensor(storage, offset, size, stride);
  }
  if (module === "torch._utils" && name === "_rebuild_parameter") {
    return (data: unknown) => data; // a Parameter is its tensor here; requires_grad is irrelevant
  }
  if (module === "torch" && Object.hasOwn(STORAGE_CLASSES, name)) return new StorageType(STORAGE_CLASSES[name]);
  if ((module === "torch" || module === "torch.storage") && name === "UntypedStorage") {
    return new StorageType("U8"); // as torch.load does: an untyped storage holds bytes
  }
  if (module === "torch" && Object.hasOwn(TORCH_DTYPES, name)) return new TorchDtype(TORCH_DTYPES[name]);
  throw new TorchCheckpointError(
    `refusing to unpickle global ${module}.${name}: only tensors, storages and OrderedDict are allowed ` +
      `(this file is not a plain state dict)`,
  );
}

function persistentLoad(pid: unknown): StorageRef {
  if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== "storage") {
    throw new TorchCheckpointError(`unsupported persistent id ${JSON.stringify(pid)}`);
  }
  const [, type, key, , numel] = pid as unknown[];
  if (!(type instanceof StorageType)) throw new TorchCheckpointError(`persistent id for "${String(key)}" has no storage class`);
  if (typeof key !== "string" || !Number.isSafeInteger(numel)) {
    throw new TorchCheckpointError(`malformed storage persistent id ${JSON.stringify(pid)}`);
  }
  return new StorageRef(key, type.dtype, numel as number);
}

/** Parses a whole torch zip checkpoint held in memory. `source` names it in errors. */
export function parseTorchZip(bytes: Uint8Array, source = "torch checkpoint"): TensorMap {
  if (bytes[0] !== 0x50 || bytes[1] !== 0x4b) {
    const legacy = bytes[0] === 0x80;
    throw new TorchCheckpointError(
      `${source}: not a zip archive` +
        (legacy ? " (legacy pre-1.6 torch.save format is not supported; re-save it or convert to safetensors)" : ""),
    );
  }
  const files = readZip(bytes, source);
  const pkls = [...files.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) {
    throw new TorchCheckpointError(`${source}: expected exactly one <folder>/data.pkl, found ${pkls.length}`);
  }
  const prefix = pkls[0].slice(0, -"data.pkl".length);
  const byteorderFile = files.get(`${prefix}byteorder`);
  const byteorder = byteorderFile ? new TextDecoder().decode(byteorderFile).trim() : "little";
  if (byteorder !== "little" && byteorder !== "big") {
    throw new TorchCheckpointError(`${source}: unknown byteorder "${byteorder}"`);
  }

  let root: unknown;
  try {
    root = unpickle(files.get(pkls[0])!, {
      findClass,
      persistentLoad,
      // OrderedDict's BUILD state is its _metadata attribute (module versions): not needed.
      build: (obj) => {
        if (!(obj instanceof Map)) throw new TorchCheckpointError("BUILD on an object that is not an OrderedDict");
        return obj;
      },
    });
  } catch (e) {
    throw new TorchCheckpointError(`${source}: ${(e as Error).message}`);
  }
  if (!(root instanceof Map)) throw new TorchCheckpointError(`${source}: data.pkl is not a state dict`);

  const storageUses = new Map<string, number>();
  for (const v of root.values()) {
    if (v instanceof TensorRef) storageUses.set(v.storage.key, (storageUses.get(v.storage.key) ?? 0) + 1);
  }
  const decoded = new Map<string, Float32Array>();
  const storageData = (ref: StorageRef): Float32Array => {
    let data = decoded.get(ref.key);
    if (!data) {
      const raw = files.get(`${prefix}data/${ref.key}`);
      if (!raw) throw new TorchCheckpointError(`${source}: storage file ${prefix}data/${ref.key} is missing`);
      const bytesNeeded = ref.numel * itemSize(ref.dtype);
      if (raw.byteLength < bytesNeeded) {
        throw new TorchCheckpointError(
          `${source}: storage ${ref.key} has ${raw.byteLength} bytes, expected ${bytesNeeded} (truncated?)`,
        );
      }
      data = decodeToFloat32(raw.subarray(0, bytesNeeded), ref.dtype, byteorder === "little");
      decoded.set(ref.key, data);
    }
    return data;
  };

  const tensors: TensorMap = new Map();
  for (const [name, value] of root) {
    if (typeof name !== "string") throw new TorchCheckpointError(`${source}: state dict key is not a string`);
    if (!(value instanceof TensorRef)) throw new TorchCheckpointError(`${source}: "${name}" is not a tensor`);
    const data = materialise(value, storageData(value.storage), storageUses.get(value.storage.key) === 1, name);
    tensors.set(name, { shape: value.size, data });
  }
  return tensors;
}

/** Copies a (possibly strided, offset) view out of its storage into a contiguous array. */
function materialise(t: TensorRef, storage: Float32Array, soleUser: boolean, name: string): Float32Array {
  const n = shapeSize(t.size);
  if (n === 0) return new Float32Array(0);
  let last = t.offset;
  for (let d = 0; d < t.size.length; d++) last += (t.size[d] - 1) * t.stride[d];
  if (last >= storage.length) {
    throw new TorchCheckpointError(
      `tensor "${name}" (offset ${t.offset}, size [${t.size}], stride [${t.stride}]) reaches element ${last} ` +
        `of a ${storage.length}-element storage`,
    );
  }
  if (isContiguous(t.size, t.stride)) {
    // A storage used by this tensor alone, exactly covered: hand it over without copying.
    if (soleUser && t.offset === 0 && n === storage.length) return storage;
    return storage.slice(t.offset, t.offset + n);
  }
  const out = new Float32Array(n);
  const rank = t.size.length;
  const index = new Array<number>(rank).fill(0);
  let src = t.offset;
  for (let i = 0; i < n; i++) {
    out[i] = storage[src];
    // Odometer increment over the index, adjusting the source position incrementally.
    for (let d = rank - 1; d >= 0; d--) {
      if (++index[d] < t.size[d]) {
        src += t.stride[d];
        break;
      }
      src -= (t.size[d] - 1) * t.stride[d];
      index[d] = 0;
    }
  }
  return out;
}

function isContiguous(size: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = size.length - 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expected) return false;
    expected *= size[d];
  }
  return true;
}

export async function readTorchZip(path: string): Promise<TensorMap> {
  return parseTorchZip(await readFile(path), path);
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface TorchStorageSpec {
  key: string;
  dtype: FloatDtype;
  values: Float32Array;
}

export interface TorchTensorSpec {
  name: string;
  /** Key of a storage in the storages list. */
  storage: string;
  offset?: number;
  size: number[];
  /** Defaults to contiguous row-major strides. */
  stride?: number[];
}

export function contiguousStrides(size: readonly number[]): number[] {
  const stride = new Array<number>(size.length);
  let s = 1;
  for (let d = size.length - 1; d >= 0; d--) {
    stride[d] = s;
    s *= size[d];
  }
  return stride;
}

/**
 * Low-level writer: explicit storages and views over them, pickled as torch.save does (protocol 2,
 * `archive/` folder, 64-byte aligned STORED entries). Tests use it for offsets and strides.
 */
export function encodeTorchZipRaw(
  storages: TorchStorageSpec[],
  tensors: TorchTensorSpec[],
  options: { folder?: string } = {},
): Uint8Array {
  const folder = options.folder ?? "archive";
  const byKey = new Map(storages.map((s) => [s.key, s]));
  const p = new PickleWriter();
  p.global("collections", "OrderedDict").emptyTuple().reduce();
  p.mark();
  for (const t of tensors) {
    const s = byKey.get(t.storage);
    if (!s) throw new Error(`tensor "${t.name}" refers to unknown storage "${t.storage}"`);
    p.str(t.name);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.mark();
    p.mark().str("storage").global("torch", STORAGE_CLASS_OF[s.dtype]).str(s.key).str("cpu").int(s.values.length);
    p.tuple().binpersid();
    p.int(t.offset ?? 0);
    p.intTuple(t.size);
    p.intTuple(t.stride ?? contiguousStrides(t.size));
    p.bool(false);
    p.global("collections", "OrderedDict").emptyTuple().reduce(); // backward_hooks
    p.tuple().reduce();
  }
  p.setitems();
  // state_dict()'s _metadata attribute, applied with BUILD like CPython pickles OrderedDict state.
  p.emptyDict().mark().str("_metadata").global("collections", "OrderedDict").emptyTuple().reduce();
  p.setitems().build();

  const files = [
    { name: `${folder}/data.pkl`, data: p.finish() },
    { name: `${folder}/byteorder`, data: new TextEncoder().encode("little") },
    ...storages.map((s) => ({ name: `${folder}/data/${s.key}`, data: encodeFromFloat32(s.values, s.dtype) })),
    { name: `${folder}/version`, data: new TextEncoder().encode("3\n") },
  ];
  return encodeStoredZip(files, 64);
}

export interface TorchZipWriteOptions {
  /** Pairs [a, b]: write b as a second view of a's storage (a and b must hold equal values). */
  shareStorage?: [string, string][];
  /** Storage element type; default F32. */
  dtype?: FloatDtype;
}

/** Serialises a state dict; each tensor gets its own storage unless listed in shareStorage. */
export function encodeTorchZip(tensors: TensorMap, options: TorchZipWriteOptions = {}): Uint8Array {
  const dtype = options.dtype ?? "F32";
  const aliasOf = new Map<string, string>();
  for (const [a, b] of options.shareStorage ?? []) {
    const ta = tensors.get(a);
    const tb = tensors.get(b);
    if (!ta || !tb) throw new Error(`shareStorage: tensor "${!ta ? a : b}" is not in the state dict`);
    if (ta.shape.join() !== tb.shape.join() || !ta.data.every((v, i) => Object.is(v, tb.data[i]))) {
      throw new Error(`shareStorage: "${a}" and "${b}" differ, so they cannot share one storage`);
    }
    aliasOf.set(b, a);
  }
  const storages: TorchStorageSpec[] = [];
  const keyOf = new Map<string, string>();
  const specs: TorchTensorSpec[] = [];
  for (const [name, t] of tensors) {
    checkTensor(name, t);
    let root = name;
    while (aliasOf.has(root)) root = aliasOf.get(root)!;
    let key = keyOf.get(root);
    if (key === undefined) {
      key = String(storages.length);
      storages.push({ key, dtype, values: tensors.get(root)!.data });
      keyOf.set(root, key);
    }
    specs.push({ name, storage: key, size: t.shape });
  }
  return encodeTorchZipRaw(storages, specs);
}

export async function writeTorchZip(path: string, tensors: TensorMap, options: TorchZipWriteOptions = {}): Promise<void> {
  await writeFile(path, encodeTorchZip(tensors, options));
}
