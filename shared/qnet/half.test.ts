import { describe, expect, it } from "vitest";
import {
  HALF_MAX,
  float32ArrayToHalf,
  float32ToHalfBits,
  halfBitsToFloat32,
  halfToFloat32Array,
  roundToHalf,
} from "./half.ts";

/** Half value from its fields, computed with plain arithmetic (independent of half.ts). */
function halfValueReference(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * Nearest half by search over the (monotonic) positive half bit patterns, ties to even.
 * Slow but obviously correct; `v` must already be a float32 value.
 */
function halfBitsReference(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  // Values at or past the midpoint between 65504 and 65536 (the next step) overflow.
  if (a >= 65520) return sign | 0x7c00;
  let lo = 0;
  let hi = 0x7bff;
  while (lo < hi) {
    // largest bits with value <= a
    const mid = (lo + hi + 1) >> 1;
    if (halfValueReference(mid) <= a) lo = mid;
    else hi = mid - 1;
  }
  const below = halfValueReference(lo);
  if (below === a) return sign | lo;
  const above = halfValueReference(lo + 1);
  const dLo = a - below;
  const dHi = above - a;
  if (dLo < dHi) return sign | lo;
  if (dHi < dLo) return sign | (lo + 1);
  return sign | (lo % 2 === 0 ? lo : lo + 1);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function floatFromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

describe("halfBitsToFloat32", () => {
  it("decodes every one of the 65536 half bit patterns exactly", () => {
    for (let h = 0; h < 0x10000; h++) {
      const got = halfBitsToFloat32(h);
      const want = halfValueReference(h);
      if (Number.isNaN(want)) {
        expect(Number.isNaN(got)).toBe(true);
      } else if (!Object.is(got, want)) {
        expect.fail(`half 0x${h.toString(16)}: got ${got}, want ${want}`);
      }
    }
  });

  it("knows the landmark values", () => {
    expect(halfBitsToFloat32(0x3c00)).toBe(1);
    expect(halfBitsToFloat32(0xc000)).toBe(-2);
    expect(halfBitsToFloat32(0x7bff)).toBe(HALF_MAX);
    expect(halfBitsToFloat32(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(halfBitsToFloat32(0x03ff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(halfBitsToFloat32(0x0400)).toBe(2 ** -14); // smallest normal
    expect(halfBitsToFloat32(0x7c00)).toBe(Infinity);
    expect(halfBitsToFloat32(0xfc00)).toBe(-Infinity);
    expect(Object.is(halfBitsToFloat32(0x8000), -0)).toBe(true);
    expect(halfBitsToFloat32(0x7e00)).toBeNaN();
  });
});

describe("float32ToHalfBits", () => {
  it("round-trips every non-NaN half value", () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue; // NaN
      const back = float32ToHalfBits(halfBitsToFloat32(h));
      if (back !== h) expect.fail(`half 0x${h.toString(16)} came back as 0x${back.toString(16)}`);
    }
  });

  it("rounds exact midpoints to even, and just-off midpoints to the nearer side", () => {
    for (let h = 0; h < 0x7bff; h++) {
      const a = halfValueReference(h);
      const b = halfValueReference(h + 1);
      const mid = (a + b) / 2; // exactly representable in float32 (one more mantissa bit)
      expect(Math.fround(mid)).toBe(mid);
      const even = h % 2 === 0 ? h : h + 1;
      if (float32ToHalfBits(mid) !== even) expect.fail(`midpoint after 0x${h.toString(16)}`);
      if (float32ToHalfBits(-mid) !== (0x8000 | even)) expect.fail(`-midpoint after 0x${h.toString(16)}`);
      // The float32 neighbours of the midpoint are not ties.
      u32[0] = 0;
      f32[0] = mid;
      const midBits = u32[0];
      if (float32ToHalfBits(floatFromBits(midBits - 1)) !== h) expect.fail(`below midpoint after 0x${h.toString(16)}`);
      if (float32ToHalfBits(floatFromBits(midBits + 1)) !== h + 1) expect.fail(`above midpoint after 0x${h.toString(16)}`);
    }
  });

  it("matches the brute-force reference on random and edge float32 values", () => {
    let seed = 12345;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    const values: number[] = [];
    for (let i = 0; i < 20000; i++) values.push(floatFromBits(rand())); // every exponent
    for (let i = 0; i < 20000; i++) {
      // Concentrate on the half range: exponents around 2^-26 .. 2^17.
      const exp = 101 + (rand() % 44);
      values.push(floatFromBits(((rand() & 1) << 31) | (exp << 23) | (rand() & 0x7fffff)));
    }
    values.push(0, -0, 65504, 65519.99609375, 65520, -65520, 1e30, -1e-30, 2 ** -25, 2 ** -25 + 2 ** -40, 2 ** -26);
    for (const v of values) {
      if (Number.isNaN(v)) continue;
      const got = float32ToHalfBits(v);
      const want = halfBitsReference(v);
      if (got !== want) expect.fail(`${v}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
    }
  });

  it("handles overflow, underflow, subnormals, signed zero, infinities and NaN", () => {
    expect(float32ToHalfBits(65519)).toBe(0x7bff); // below the overflow midpoint
    expect(float32ToHalfBits(65520)).toBe(0x7c00); // the midpoint rounds (to even) to Infinity
    expect(float32ToHalfBits(1e6)).toBe(0x7c00);
    expect(float32ToHalfBits(-1e6)).toBe(0xfc00);
    expect(float32ToHalfBits(Infinity)).toBe(0x7c00);
    expect(float32ToHalfBits(-Infinity)).toBe(0xfc00);
    expect(float32ToHalfBits(2 ** -24)).toBe(0x0001);
    expect(float32ToHalfBits(2 ** -25)).toBe(0x0000); // tie between 0 and 2^-24: even is 0
    expect(float32ToHalfBits(1.5 * 2 ** -24)).toBe(0x0002); // tie between 1 and 2: even is 2
    expect(float32ToHalfBits(2 ** -25 * 1.0000001)).toBe(0x0001);
    expect(float32ToHalfBits(1e-10)).toBe(0x0000);
    expect(float32ToHalfBits(-1e-10)).toBe(0x8000);
    expect(float32ToHalfBits(1e-45)).toBe(0x0000); // float32 subnormal
    expect(float32ToHalfBits(-0)).toBe(0x8000);
    expect(float32ToHalfBits(1023.5 * 2 ** -24)).toBe(0x0400); // rounds up into the normals
    const nan = float32ToHalfBits(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
    // A NaN whose payload is only in the low bits must stay NaN, not become Infinity.
    expect(halfBitsToFloat32(float32ToHalfBits(floatFromBits(0x7f800001)))).toBeNaN();
    expect(float32ToHalfBits(floatFromBits(0xff800001)) & 0x8000).toBe(0x8000);
  });

  it("rounds to float32 first, like any float32 input", () => {
    expect(roundToHalf(0.1)).toBe(halfBitsToFloat32(0x2e66));
    expect(roundToHalf(1 / 3)).toBe(halfBitsToFloat32(0x3555));
  });
});

describe("array conversions", () => {
  it("convert element-wise, honour subarray offsets and fill a given out array", () => {
    const backing = new Float32Array([9, 1, -2, 0.1, 65520, 2 ** -24, 7]);
    const src = backing.subarray(1, 6);
    const half = float32ArrayToHalf(src);
    expect(Array.from(half)).toEqual([0x3c00, 0xc000, 0x2e66, 0x7c00, 0x0001]);
    const out = new Float32Array(5);
    expect(halfToFloat32Array(half, out)).toBe(out);
    expect(Array.from(out)).toEqual([1, -2, halfBitsToFloat32(0x2e66), Infinity, 2 ** -24]);
    const outHalf = new Uint16Array(5);
    expect(float32ArrayToHalf(src, outHalf)).toBe(outHalf);
    expect(Array.from(outHalf)).toEqual(Array.from(half));
  });

  it("reject an out array of the wrong length", () => {
    expect(() => float32ArrayToHalf(new Float32Array(3), new Uint16Array(2))).toThrow(/out has 2 elements, expected 3/);
    expect(() => halfToFloat32Array(new Uint16Array(3), new Float32Array(4))).toThrow(/out has 4 elements, expected 3/);
  });
});
