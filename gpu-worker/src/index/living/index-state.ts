/**
 * POST /v1/index-state: live counts of one version plus its tail, for the edge's index detail
 * (docCount, pendingDocs, segments). A segment's rows are live unless its deletion bitmap marks them
 * or the tail touched their id; the tail's live documents are pending (not yet in a graph segment).
 */
import type { IndexStateAnswer } from "../../../../shared/api/living-api.ts";
import type { LoadedIndex } from "../index-registry.ts";
import { IndexUnavailableError } from "../search-errors.ts";
import type { TailView } from "../tail/tail-view.ts";

export async function indexState(index: LoadedIndex, tail: TailView | undefined): Promise<IndexStateAnswer> {
  const segments = await Promise.all(
    index.manifest.shards.map(async (entry) => {
      try {
        const dead = await index.deadRows(entry.id, tail);
        return { id: entry.id, docCount: entry.docCount, deletedDocs: dead?.count ?? 0 };
      } catch (error) {
        throw new IndexUnavailableError(`index ${index.label}: segment ${entry.id} could not be loaded`, error);
      }
    }),
  );
  const pendingDocs = tail?.docCount ?? 0;
  return {
    docCount: segments.reduce((sum, s) => sum + s.docCount - s.deletedDocs, 0) + pendingDocs,
    pendingDocs,
    segments,
    coveredSeq: index.coveredSeq,
    tailBatches: tail?.batches ?? 0,
  };
}
