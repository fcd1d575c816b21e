/**
 * The tiered merge policy of compactions (Lucene's, simplified): many small segments make every
 * search visit many small graphs, and a mostly deleted segment makes it walk dead rows. So, after
 * the tail's deletes are applied:
 *
 * - a segment with no live row is dropped;
 * - a segment more than half deleted is merged (its live rows rewritten, its graph rebuilt);
 * - when more than `maxSmallSegments` segments (the tail's new segment counted) hold fewer than
 *   `smallLiveRows` live rows each, all of those are merged into one.
 *
 * Merged rows and the tail go into `vVVVVVV-m00000` (more if over the shard size) when the tail is
 * among the merged, else the tail gets its own `vVVVVVV-t00000`.
 */

export const MERGE_POLICY = {
  smallLiveRows: 20_000,
  maxSmallSegments: 4,
  /** A segment with more than this share of its rows deleted is rewritten. */
  deletedShareMax: 0.5,
} as const;

export type MergePolicy = { [K in keyof typeof MERGE_POLICY]: number };

export interface SegmentLiveness {
  id: string;
  /** Rows of the segment (live and deleted). */
  docCount: number;
  /** Rows marked deleted (after this compaction's deletes). */
  deleted: number;
}

export interface MergePlan {
  /** Kept by reference, in their order. */
  keep: string[];
  /** Rewritten into the merged segment, in their order. */
  merge: string[];
  /** No live row left. */
  drop: string[];
  /** Whether the tail's live documents go into the merged segment (else a segment of their own). */
  mergeTail: boolean;
}

export function planMerges(segments: readonly SegmentLiveness[], tailLiveDocs: number, policy: MergePolicy = MERGE_POLICY): MergePlan {
  const drop: string[] = [];
  const halfDeleted = new Set<string>();
  const small = new Set<string>();
  for (const s of segments) {
    const live = s.docCount - s.deleted;
    if (live <= 0) drop.push(s.id);
    else if (s.deleted > s.docCount * policy.deletedShareMax) halfDeleted.add(s.id);
    else if (live < policy.smallLiveRows) small.add(s.id);
  }
  const tailSmall = tailLiveDocs > 0 && tailLiveDocs < policy.smallLiveRows;
  const mergeSmall = small.size + (tailSmall ? 1 : 0) > policy.maxSmallSegments;
  const merged = (id: string) => halfDeleted.has(id) || (mergeSmall && small.has(id));
  return {
    keep: segments.filter((s) => !drop.includes(s.id) && !merged(s.id)).map((s) => s.id),
    merge: segments.filter((s) => !drop.includes(s.id) && merged(s.id)).map((s) => s.id),
    drop,
    mergeTail: mergeSmall && tailSmall,
  };
}
