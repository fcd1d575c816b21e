/**
 * Bounded top-k selection for search results.
 *
 * Order: higher score first; equal scores go to the lower row (then the lower shard when merging),
 * so results are deterministic whatever order documents are scored in. NaN scores never enter:
 * they compare false against everything and would corrupt the heap order.
 */

/** One scored row of one shard (the API's Hit, by document id, is made from it in index/shard-search.ts). */
export interface RowHit {
  shard: number;
  row: number;
  score: number;
}

/** Whether (scoreA, rowA) ranks strictly below (scoreB, rowB). */
function ranksBelow(scoreA: number, rowA: number, scoreB: number, rowB: number): boolean {
  return scoreA < scoreB || (scoreA === scoreB && rowA > rowB);
}

/**
 * A min-heap of at most k (row, score) pairs whose root is the worst kept entry, so each offer
 * costs O(1) when it does not qualify and O(log k) when it does. Typed arrays keep it allocation-free
 * on the hot path (exhaustive search offers every row of a shard).
 */
export class TopK {
  readonly k: number;
  private readonly rows: Uint32Array;
  private readonly scores: Float64Array;
  private count = 0;

  constructor(k: number) {
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`top-k: k must be a non-negative integer, got ${k}`);
    this.k = k;
    this.rows = new Uint32Array(k);
    this.scores = new Float64Array(k);
  }

  get size(): number {
    return this.count;
  }

  /** Whether the heap holds k entries (only then does `worstScore` bound what can still enter). */
  get full(): boolean {
    return this.count === this.k;
  }

  /** The lowest kept score, or -Infinity while not full. */
  get worstScore(): number {
    return this.count === this.k && this.k > 0 ? this.scores[0] : -Infinity;
  }

  /** Offers a row; returns whether it entered the top k. */
  push(row: number, score: number): boolean {
    if (Number.isNaN(score) || this.k === 0) return false;
    const { rows, scores } = this;
    if (this.count < this.k) {
      // Sift up from the new leaf.
      let i = this.count++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!ranksBelow(score, row, scores[parent], rows[parent])) break;
        rows[i] = rows[parent];
        scores[i] = scores[parent];
        i = parent;
      }
      rows[i] = row;
      scores[i] = score;
      return true;
    }
    if (!ranksBelow(scores[0], rows[0], score, row)) return false;
    // Replace the root and sift down.
    const n = this.count;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && ranksBelow(scores[right], rows[right], scores[left], rows[left]) ? right : left;
      if (!ranksBelow(scores[child], rows[child], score, row)) break;
      rows[i] = rows[child];
      scores[i] = scores[child];
      i = child;
    }
    rows[i] = row;
    scores[i] = score;
    return true;
  }

  /** The kept entries, best first, tagged with `shard`. Does not modify the heap. */
  sorted(shard = 0): RowHit[] {
    const hits: RowHit[] = [];
    for (let i = 0; i < this.count; i++) hits.push({ shard, row: this.rows[i], score: this.scores[i] });
    return hits.sort(compareRowHits);
  }
}

/** Sort comparator: best first; ties by lower row, then lower shard. */
export function compareRowHits(a: RowHit, b: RowHit): number {
  if (a.score !== b.score) return b.score - a.score;
  if (a.row !== b.row) return a.row - b.row;
  return a.shard - b.shard;
}

/**
 * The best k hits across per-shard result lists (each list in any order). A k-way heap merge would
 * save little: the lists are at most k long each, and sorting their union keeps one tie-break rule.
 */
export function mergeRowTopK(lists: readonly (readonly RowHit[])[], k: number): RowHit[] {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`mergeRowTopK: k must be a non-negative integer, got ${k}`);
  const all: RowHit[] = [];
  for (const list of lists) for (const hit of list) if (!Number.isNaN(hit.score)) all.push(hit);
  return all.sort(compareRowHits).slice(0, k);
}
