/**
 * Seeded pseudo-random numbers for search and index building: a request with the same seed samples
 * the same entry points, so results are reproducible (and tests deterministic).
 */

export { seededRandom } from "../../../shared/random.ts";

/** A uniform integer in [0, n). */
export function randomIndex(rand: () => number, n: number): number {
  return Math.floor(rand() * n);
}

/**
 * Appends up to `count` distinct rows of [0, n) that are not yet marked in `taken` (of which
 * `takenCount` are marked) to `out`, marking them. Rejection sampling while the unmarked rows are plentiful, otherwise one selection-sampling
 * pass (Knuth's algorithm S), so asking for most of the corpus costs O(n), not a coupon-collector run.
 */
export function sampleUnmarked(
  rand: () => number,
  n: number,
  taken: Uint8Array,
  takenCount: number,
  count: number,
  out: number[],
): void {
  let free = n - takenCount;
  let want = Math.min(count, free);
  if (want * 2 <= free) {
    while (want > 0) {
      const row = randomIndex(rand, n);
      if (taken[row] !== 0) continue;
      taken[row] = 1;
      out.push(row);
      want--;
    }
    return;
  }
  for (let row = 0; row < n && want > 0; row++) {
    if (taken[row] !== 0) continue;
    if (rand() * free < want) {
      taken[row] = 1;
      out.push(row);
      want--;
    }
    free--;
  }
}
