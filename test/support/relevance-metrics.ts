/**
 * Ranking metrics with binary relevance, as the relevance benchmark and the model-card test report
 * them. `ranking` is the system's answer, best first; `relevant` the ids judged relevant.
 */

/** 1 / rank of the first relevant id within the first k, or 0. */
export function reciprocalRank(ranking: readonly string[], relevant: ReadonlySet<string>, k: number): number {
  const end = Math.min(k, ranking.length);
  for (let i = 0; i < end; i++) if (relevant.has(ranking[i]!)) return 1 / (i + 1);
  return 0;
}

/** The share of the relevant ids found within the first k. */
export function recallAt(ranking: readonly string[], relevant: ReadonlySet<string>, k: number): number {
  if (relevant.size === 0) return 0;
  let found = 0;
  const end = Math.min(k, ranking.length);
  for (let i = 0; i < end; i++) if (relevant.has(ranking[i]!)) found++;
  return found / relevant.size;
}

/** The share of the first k positions that hold a relevant id (an answer shorter than k counts its gaps as misses). */
export function precisionAt(ranking: readonly string[], relevant: ReadonlySet<string>, k: number): number {
  let found = 0;
  const end = Math.min(k, ranking.length);
  for (let i = 0; i < end; i++) if (relevant.has(ranking[i]!)) found++;
  return found / k;
}

/** nDCG@k with gain 1 per relevant id and log2(rank + 1) discount, against the ideal ranking. */
export function ndcgAt(ranking: readonly string[], relevant: ReadonlySet<string>, k: number): number {
  let dcg = 0;
  const end = Math.min(k, ranking.length);
  for (let i = 0; i < end; i++) if (relevant.has(ranking[i]!)) dcg += 1 / Math.log2(i + 2);
  let ideal = 0;
  for (let i = 0; i < Math.min(k, relevant.size); i++) ideal += 1 / Math.log2(i + 2);
  return ideal === 0 ? 0 : dcg / ideal;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** The ids of the k highest scores, best first (ties: the lower index first, so answers are reproducible). */
export function topIds(scores: ArrayLike<number>, ids: readonly string[], k: number): string[] {
  const order: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (order.length === k && s <= scores[order[k - 1]!]!) continue;
    let at = order.length;
    while (at > 0 && scores[order[at - 1]!]! < s) at--;
    order.splice(at, 0, i);
    if (order.length > k) order.pop();
  }
  return order.map((i) => ids[i]!);
}
