/**
 * IEEE 754 binary16 ("half", float16) <-> binary32 conversion, dependency-free.
 *
 * Used for fp16 q-net weights on the wire and for fp16 index storage. Node 20, workerd and
 * older browsers have no Float16Array / Math.f16round, so half values travel as their raw
 * bit patterns in a Uint16Array.
 *
 * float32 -> half rounds to nearest, ties to even (what numpy / torch `.half()` do),
 * produces half subnormals, overflows to ±Infinity (values ≥ 65520 in magnitude),
 * keeps the sign of zero, and maps NaN to a quiet NaN that keeps the sign and the top
 * payload bits. half -> float32 is exact (every half value is a float32 value).
 */

// Scratch views for reinterpreting one float32 as its bits; the module is single-threaded JS.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Largest finite half value. */
export const HALF_MAX = 65504;

/** Half bits of a float32 given as its raw bit pattern (uint32). */
function halfBitsFromFloat32Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp32 = (bits >>> 23) & 0xff;
  const mant32 = bits & 0x7fffff;

  if (exp32 === 0xff) {
    if (mant32 === 0) return sign | 0x7c00; // ±Infinity
    // NaN: force the quiet bit so a payload that lives only in the low 13 bits can't turn
    // into Infinity when truncated.
    return sign | 0x7e00 | (mant32 >>> 13);
  }

  // Half exponent field for a normal result (bias 15 instead of 127).
  const exp16 = exp32 - 112;
  if (exp16 >= 0x1f) return sign | 0x7c00; // at least 2^16: overflow to Infinity

  if (exp16 >= 1) {
    // Normal half: keep the top 10 mantissa bits, round on the dropped 13.
    let half = sign | (exp16 << 10) | (mant32 >>> 13);
    const rest = mant32 & 0x1fff;
    // A carry out of the mantissa correctly bumps the exponent (and 65520.. becomes Infinity).
    if (rest > 0x1000 || (rest === 0x1000 && (half & 1) !== 0)) half += 1;
    return half;
  }

  // Half subnormal (or zero): value = m · 2^-24 with m in [0, 1023].
  // The float32 value is (2^23 + mant32) · 2^(exp32 - 150), so m = full >> (126 - exp32).
  // Below exp32 = 102 the value is < 2^-25 (half the smallest subnormal): rounds to ±0.
  // (float32 subnormals, exp32 = 0, land here too and become ±0.)
  if (exp32 < 102) return sign;
  const full = mant32 | 0x800000;
  const shift = 126 - exp32; // 14..24
  let m = full >>> shift;
  const rest = full & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && (m & 1) !== 0)) m += 1;
  // m may round up to 1024, which is exactly the encoding of the smallest normal half.
  return sign | m;
}

/** Raw float32 bit pattern of a half given as its bits. */
function float32BitsFromHalfBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp16 = (h >>> 10) & 0x1f;
  const mant16 = h & 0x3ff;
  if (exp16 === 0x1f) return (sign | 0x7f800000 | (mant16 << 13)) >>> 0; // Inf / NaN
  if (exp16 !== 0) return (sign | ((exp16 + 112) << 23) | (mant16 << 13)) >>> 0;
  if (mant16 === 0) return sign >>> 0; // ±0
  // Subnormal half: normalise. Shift the mantissa up until its leading 1 reaches bit 10.
  let m = mant16;
  let e = 113; // float32 exponent field for 2^-14, the exponent of the smallest normal half
  while ((m & 0x400) === 0) {
    m <<= 1;
    e -= 1;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** Converts a number to the bits of the nearest half (rounding the number to float32 first). */
export function float32ToHalfBits(value: number): number {
  scratchF32[0] = value;
  return halfBitsFromFloat32Bits(scratchU32[0]);
}

/** The value of a half given as its 16 raw bits. */
export function halfBitsToFloat32(bits: number): number {
  scratchU32[0] = float32BitsFromHalfBits(bits & 0xffff);
  return scratchF32[0];
}

/** Rounds a number to the nearest half value (like Math.fround, for binary16). */
export function roundToHalf(value: number): number {
  return halfBitsToFloat32(float32ToHalfBits(value));
}

/** Converts a float32 array to half bits; `out` (if given) must have the same length. */
export function float32ArrayToHalf(src: Float32Array, out?: Uint16Array): Uint16Array {
  const dst = out ?? new Uint16Array(src.length);
  if (dst.length !== src.length) {
    throw new RangeError(`float32ArrayToHalf: out has ${dst.length} elements, expected ${src.length}`);
  }
  // A Float32Array's byteOffset is always a multiple of 4, so this view is always valid.
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) dst[i] = halfBitsFromFloat32Bits(bits[i]);
  return dst;
}

/** Converts half bits to a float32 array; `out` (if given) must have the same length. */
export function halfToFloat32Array(src: Uint16Array, out?: Float32Array): Float32Array {
  const dst = out ?? new Float32Array(src.length);
  if (dst.length !== src.length) {
    throw new RangeError(`halfToFloat32Array: out has ${dst.length} elements, expected ${src.length}`);
  }
  const bits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) bits[i] = float32BitsFromHalfBits(src[i]);
  return dst;
}
