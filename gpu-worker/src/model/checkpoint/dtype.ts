/**
 * Element types found in checkpoint files and their conversion to/from float32.
 *
 * Names follow safetensors ("F32", "BF16", …); the torch reader maps its storage classes onto them.
 * Integer types are read too because real checkpoints carry integer buffers (e.g. BERT's
 * `embeddings.position_ids`, int64); they are converted to float32 like everything else and the
 * model loader ignores them.
 */

export const DTYPE_INFO = {
  F64: { itemSize: 8 },
  F32: { itemSize: 4 },
  F16: { itemSize: 2 },
  BF16: { itemSize: 2 },
  I64: { itemSize: 8 },
  I32: { itemSize: 4 },
  I16: { itemSize: 2 },
  I8: { itemSize: 1 },
  U8: { itemSize: 1 },
  BOOL: { itemSize: 1 },
} as const satisfies Record<string, { itemSize: number }>;

export type Dtype = keyof typeof DTYPE_INFO;

/** Floating types the writers can produce. */
export type FloatDtype = "F64" | "F32" | "F16" | "BF16";

export function isDtype(name: string): name is Dtype {
  return Object.hasOwn(DTYPE_INFO, name);
}

export function itemSize(dtype: Dtype): number {
  return DTYPE_INFO[dtype].itemSize;
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// Scratch space for bit-level float32 conversions.
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE half → number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero or subnormal
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** number → IEEE half bits, rounding to nearest even (as torch's .half() does). */
export function floatToHalf(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflows to ±0
    mant |= 0x800000; // make the implicit bit explicit
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and may give Inf).
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return half;
}

/** bfloat16 bits → number. */
export function bfloat16ToFloat(b: number): number {
  u32Scratch[0] = b << 16;
  return f32Scratch[0];
}

/** number → bfloat16 bits, rounding to nearest even. */
export function floatToBfloat16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40; // keep NaN a NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

type Reader = (view: DataView, byteOffset: number, littleEndian: boolean) => number;

const READERS: Record<Dtype, Reader> = {
  F64: (v, o, le) => v.getFloat64(o, le),
  F32: (v, o, le) => v.getFloat32(o, le),
  F16: (v, o, le) => halfToFloat(v.getUint16(o, le)),
  BF16: (v, o, le) => bfloat16ToFloat(v.getUint16(o, le)),
  I64: (v, o, le) => Number(v.getBigInt64(o, le)),
  I32: (v, o, le) => v.getInt32(o, le),
  I16: (v, o, le) => v.getInt16(o, le),
  I8: (v, o) => v.getInt8(o),
  U8: (v, o) => v.getUint8(o),
  BOOL: (v, o) => (v.getUint8(o) ? 1 : 0),
};

/**
 * Decodes `bytes` (a whole number of elements of `dtype`) into a fresh Float32Array.
 * The result never aliases `bytes`, so callers may drop the file buffer afterwards.
 */
export function decodeToFloat32(bytes: Uint8Array, dtype: Dtype, littleEndian = true): Float32Array {
  const size = itemSize(dtype);
  if (bytes.byteLength % size !== 0) {
    throw new Error(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements (${size} bytes each)`);
  }
  const count = bytes.byteLength / size;
  const out = new Float32Array(count);
  if (dtype === "F32" && littleEndian === HOST_LITTLE_ENDIAN) {
    // Fast path for the common case; copying through bytes also handles unaligned offsets.
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read = READERS[dtype];
  for (let i = 0; i < count; i++) out[i] = read(view, i * size, littleEndian);
  return out;
}

/** Encodes float values as little-endian `dtype` bytes (the writers only produce floating types). */
export function encodeFromFloat32(values: Float32Array, dtype: FloatDtype): Uint8Array {
  const size = itemSize(dtype);
  if (dtype === "F32" && HOST_LITTLE_ENDIAN) {
    return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  }
  const out = new Uint8Array(values.length * size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const o = i * size;
    switch (dtype) {
      case "F64":
        view.setFloat64(o, v, true);
        break;
      case "F32":
        view.setFloat32(o, v, true);
        break;
      case "F16":
        view.setUint16(o, floatToHalf(v), true);
        break;
      case "BF16":
        view.setUint16(o, floatToBfloat16(v), true);
        break;
    }
  }
  return out;
}

/** Product of a shape's dimensions (1 for a scalar). */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
