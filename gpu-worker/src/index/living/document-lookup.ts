/**
 * POST /v1/documents/get: the live document with an id, as of one version and its tail, newest
 * first: the tail decides when it touched the id (its upsert is the document; a delete means there
 * is none), otherwise the version's segments do (a row their deletion bitmap marks is not live).
 */
import type { DocumentAnswer } from "../../../../shared/api/living-api.ts";
import type { LoadedIndex } from "../index-registry.ts";
import { IndexUnavailableError } from "../search-errors.ts";
import type { TailView } from "../tail/tail-view.ts";
import { DocumentNotFoundError } from "./errors.ts";

export async function lookupDocument(index: LoadedIndex, tail: TailView | undefined, id: string): Promise<DocumentAnswer> {
  const notFound = () => new DocumentNotFoundError(`index ${index.label} has no live document ${JSON.stringify(id.slice(0, 100))}`);
  if (tail) {
    const row = tail.rowOf(id);
    if (row !== undefined) return { id, fields: { ...tail.fields(row) } };
    if (tail.hides(id)) throw notFound();
  }
  // Newest segments last (a compaction appends its tail segment): look from the end.
  for (const entry of [...index.manifest.shards].reverse()) {
    let found: DocumentAnswer | undefined;
    try {
      const [rows, deleted] = await Promise.all([index.rowsById(entry.id), index.deletionBitmap(entry.id)]);
      const row = rows.get(id);
      if (row !== undefined && !deleted?.has(row)) found = { id, fields: (await index.shard(entry.id)).fields(row) };
    } catch (error) {
      // A segment that cannot be read might hold the document: "not found" would be a lie.
      throw new IndexUnavailableError(`index ${index.label}: segment ${entry.id} could not be loaded`, error);
    }
    if (found) return found;
  }
  throw notFound();
}
