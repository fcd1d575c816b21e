/**
 * Seeded pseudo-random numbers, one implementation for the whole repository: fixtures (a generated
 * checkpoint is byte-for-byte reproducible), search (a request's seed fixes its entry points) and
 * synthetic benchmark corpora.
 */

/** The largest seed: seededRandom keeps 32 bits of state, so larger seeds would wrap onto smaller ones. */
export const SEED_MAX = 0xffffffff;

/** mulberry32: a tiny, fast generator with 32 bits of state; returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples by Box–Muller over `uniform`. */
export function gaussian(uniform: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u = 1 - uniform(); // (0, 1]: keeps log() finite
    const v = uniform();
    const radius = Math.sqrt(-2 * Math.log(u));
    spare = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  };
}
