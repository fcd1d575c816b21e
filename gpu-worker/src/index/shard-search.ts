/**
 * One query over one loaded index version: every requested shard is searched on its own (shards are
 * independently searchable segments: their graphs never cross), then the per-shard top-k lists are
 * merged into the global top-k. Used by the HTTP backend and the `hypencoder search` CLI alike.
 *
 * A shard that cannot be opened (missing object, failed verification) is reported in
 * `missingShards` and the answer is partial; only when no shard at all can be opened is it an error.
 * Errors while searching an opened shard (scoring, cancellation) fail the whole search.
 *
 * Living indexes: a `tail` (TailView: the WAL batches after the version's coveredSeq) hides every
 * segment row whose id it touched, as do the segments' deletion bitmaps. Graph search may walk
 * through such dead rows but never returns them; exact search skips them, so exact mode is brute
 * force over exactly the live documents. The tail's own live documents are scored exhaustively (one
 * iteration, shard id TAIL_SHARD_ID) when the request names that shard, or names none; their hits
 * sit after the last segment (position shards.length, rows from docCount on) when merged.
 *
 * Filters (issue 12): with `filter`, each segment searches only its live matching rows
 * (filter/filtered-search.ts: the planner's "filtered-exhaustive" or "filtered-walk"; exact mode
 * scores exactly those rows), and the tail only its live documents whose WAL fields match. The
 * answer's `plan` is "filtered-walk" when any segment walked.
 */
import { AnswerBudget } from "./answer-budget.ts";
import type { DecodedShard } from "../../../shared/index/format.ts";
import { BUILD_DEFAULTS, type Hit, resolveSearchParams, type SearchParams } from "../../../shared/api/worker-api.ts";
import { TAIL_SHARD_ID } from "../../../shared/api/living-api.ts";
import type { DeletionBitmap } from "../../../shared/index/deletion-bitmap.ts";
import { exhaustiveSearch } from "../search/exhaustive.ts";
import { graphSearch } from "../search/graph-search.ts";
import { type RowHit, mergeRowTopK } from "../search/topk.ts";
import type { IndexSearchResult, ShardProgress } from "./index-backend.ts";
import type { LoadedIndex } from "./index-registry.ts";
import { onnxRowScorer, type ScoringQNet } from "./onnx-row-scorer.ts";
import { prepareProxyIndex } from "./proxy-index-reader.ts";
import { proxyGradientPoints, proxySeedRows } from "./proxy-seeds.ts";
import { IndexUnavailableError, SearchRequestError } from "./search-errors.ts";
import type { TailView } from "./tail/tail-view.ts";
import { matchesFilter } from "../../../shared/filter/filter.ts";
import { scoreRowList } from "../filter/filtered-exhaustive.ts";
import type { FilterPlan } from "../filter/plan.ts";
import { searchFilteredSegment } from "../filter/filtered-search.ts";
import { liveMatchingRows, type SearchFilter } from "../filter/search-filter.ts";
import { declaredFieldValues } from "../filter/segment-columns.ts";
import type { RowScorer } from "../search/row-scorer.ts";

export interface SearchIndexOptions {
  /** Shard ids (TAIL_SHARD_ID for the tail's documents); all of the version's, and the tail, when omitted. Duplicates are searched once. */
  shards?: readonly string[];
  /** The WAL batches after the version's coveredSeq, folded: they mask segment rows, and are scored as the tail shard. */
  tail?: TailView;
  params: SearchParams;
  /** Stored fields to attach to each hit; for a format 1 version without a tail each must be one of the manifest's fields. */
  fields?: readonly string[];
  /** The answer's size limit (AnswerBudget); unbounded when omitted. */
  maxAnswerBytes?: number;
  /** A prepared q-net: segments in shared memory are scored by row id (scoreRows), other rows gathered (score). */
  qnet: ScoringQNet;
  signal?: AbortSignal;
  onProgress?: (progress: ShardProgress) => void;
  /** Told about each shard that could not be opened (for logs); the search goes on without it. */
  onShardError?: (shardId: string, error: unknown) => void;
  /** Rows per scorer call. */
  batchRows?: number;
  /** Only documents matching this filter are returned (search-filter.ts prepareSearchFilter). */
  filter?: SearchFilter;
}

export async function searchIndex(index: LoadedIndex, options: SearchIndexOptions): Promise<IndexSearchResult> {
  const { segments: shardIds, tail: searchTail } = resolveShards(index, options.shards, options.tail !== undefined);
  const fields = resolveFields(index, options.fields ?? [], options.tail !== undefined);
  const tail = searchTail ? (options.tail ?? EMPTY_TAIL) : undefined;
  options.signal?.throwIfAborted();

  const opened = await Promise.all(
    shardIds.map(async (id) => {
      try {
        // A segment whose deletions cannot be read is not searched: it would return deleted documents.
        const [shard, dead] = await Promise.all([index.shard(id), index.deadRows(id, options.tail)]);
        return { id, shard, dead };
      } catch (error) {
        options.onShardError?.(id, error);
        return { id, error };
      }
    }),
  );
  const available = opened.filter((o): o is { id: string; shard: DecodedShard; dead: DeletionBitmap | undefined } => "shard" in o);
  const missingShards = opened.filter((o) => !("shard" in o)).map((o) => o.id);
  if (available.length === 0 && shardIds.length > 0 && !tail) {
    const first = opened[0] && "error" in opened[0] ? opened[0].error : undefined;
    throw new IndexUnavailableError(`index ${index.label}: none of the ${shardIds.length} shards searched could be loaded`, first);
  }
  options.signal?.throwIfAborted();

  const searches = available.map(({ id, shard, dead }) => searchShard(index, id, shard, dead, options));
  if (tail) searches.push(searchTailDocuments(index, tail, options));
  const results = await Promise.all(searches);
  // One word per worker answer: any shard that walked makes it "filtered-walk" (the edge merges likewise).
  const plan: FilterPlan | undefined = options.filter ? (results.some((r) => r.plan === "filtered-walk") ? "filtered-walk" : "filtered-exhaustive") : undefined;
  const byPosition = new Map(available.map(({ id, shard }) => [index.position(id)!, shard]));
  const tailPosition = index.manifest.shards.length;
  const merged = mergeRowTopK(
    results.map((r) => r.hits),
    options.params.k,
  );
  return {
    hits: assembleHits(
      merged,
      (hit) => (hit.shard === tailPosition ? toTailHit(index, tail!, hit, fields) : toApiHit(index, byPosition.get(hit.shard)!, hit, fields)),
      options,
    ),
    docsScored: results.reduce((sum, r) => sum + r.docsScored, 0),
    iterations: results.reduce((most, r) => Math.max(most, r.iterations), 0),
    shardsSearched: available.length + (tail ? 1 : 0),
    missingShards,
    ...(plan ? { plan } : {}),
  };
}

/** The tail shard asked for without a tail range: it has no documents. */
const EMPTY_TAIL: Pick<TailView, "docCount" | "embeddings" | "dim" | "ids" | "fields"> = {
  docCount: 0,
  embeddings: new Float32Array(0),
  dim: 1,
  ids: [],
  fields: () => ({}),
};
type SearchedTail = typeof EMPTY_TAIL;

/** The tail's live documents, every one scored (a tail is small next to the segments); one iteration. */
async function searchTailDocuments(index: LoadedIndex, tail: SearchedTail, options: SearchIndexOptions): Promise<ShardResult> {
  const position = index.manifest.shards.length;
  const docStart = index.manifest.docCount;
  if (tail.docCount === 0) {
    options.onProgress?.({ shard: TAIL_SHARD_ID, iteration: 1, hits: [] });
    return { hits: [], docsScored: 0, iterations: 1 };
  }
  const scorer = onnxRowScorer(options.qnet, tail.embeddings, tail.dim, {
    signal: options.signal,
    ...(options.batchRows ? { batchRows: options.batchRows } : {}),
  });
  const batch = options.batchRows ? { batchSize: options.batchRows } : {};
  const { filter } = options;
  // A filtered tail: exactly its live documents whose declared fields (as written) match.
  const result = filter
    ? await scoreRowList(scorer, tailMatchingRows(tail, filter), { k: options.params.k, shard: position, signal: options.signal, ...batch })
    : await exhaustiveSearch(scorer, tail.docCount, { k: options.params.k, shard: position, signal: options.signal, ...batch });
  options.onProgress?.({ shard: TAIL_SHARD_ID, iteration: 1, hits: result.hits.map((h) => ({ id: tail.ids[h.row]!, score: h.score })) });
  return {
    hits: result.hits.map((h) => ({ shard: position, row: docStart + h.row, score: h.score })),
    docsScored: result.stats.docsScored,
    iterations: 1,
    ...(filter ? { plan: "filtered-exhaustive" as const } : {}),
  };
}

function tailMatchingRows(tail: SearchedTail, filter: SearchFilter): Uint32Array {
  const rows: number[] = [];
  for (let row = 0; row < tail.docCount; row++) if (matchesFilter(filter.filter, declaredFieldValues(filter.fields, tail.fields(row)))) rows.push(row);
  return Uint32Array.from(rows);
}

function toTailHit(index: LoadedIndex, tail: SearchedTail, hit: RowHit, fields: readonly string[]): Hit {
  const row = hit.row - index.manifest.docCount;
  const out: Hit = { id: tail.ids[row]!, score: hit.score };
  if (fields.length > 0) out.fields = pickFields(tail.fields(row), fields);
  return out;
}

function pickFields(stored: Readonly<Record<string, unknown>>, fields: readonly string[]): Record<string, unknown> {
  const picked: Record<string, unknown> = {};
  for (const f of fields) if (Object.hasOwn(stored, f)) picked[f] = stored[f];
  return picked;
}

interface ShardResult {
  /** Hits with `shard` = position in the manifest and `row` = GLOBAL row, so ties break as in one big shard. */
  hits: RowHit[];
  docsScored: number;
  iterations: number;
  /** The plan this shard ran, for filtered searches. */
  plan?: FilterPlan;
}

async function searchShard(index: LoadedIndex, id: string, shard: DecodedShard, dead: DeletionBitmap | undefined, options: SearchIndexOptions): Promise<ShardResult> {
  const params = resolveSearchParams(walkFor(shard, options.params));
  const isDead = dead ? (row: number) => dead.has(row) : undefined;
  const position = index.position(id)!;
  const docStart = index.manifest.shards[position]!.docStart;
  const scorer = onnxRowScorer(options.qnet, shard.embeddings, shard.dim, {
    signal: options.signal,
    ...(options.batchRows ? { batchRows: options.batchRows } : {}),
  });
  const progress = (iteration: number, hits: RowHit[]) =>
    options.onProgress?.({ shard: id, iteration, hits: hits.map((h) => ({ id: shard.ids[h.row]!, score: h.score })) });
  const global = (hits: RowHit[]): RowHit[] => hits.map((h) => ({ shard: position, row: docStart + h.row, score: h.score }));

  if (options.filter) return searchShardFiltered(index, id, shard, dead, options, options.filter, { scorer, position, progress, global });
  if (params.mode === "exact") {
    const result = await exhaustiveSearch(scorer, shard.docCount, {
      k: params.k,
      shard: position,
      signal: options.signal,
      ...(isDead ? { isDead } : {}),
      ...(options.batchRows ? { batchSize: options.batchRows } : {}),
    });
    progress(1, result.hits);
    return { hits: global(result.hits), docsScored: result.stats.docsScored, iterations: 1 };
  }
  // The entry set: the shard's build-time k-means medoids (if it stores any), then seeded random rows;
  // the proxy walk then takes the rows its q-net's gradient points at from the shard's proxy index.
  const { gradient } = options.qnet;
  const seedRows =
    params.variant === "proxy" && gradient
      ? proxySeedRows(shard, { gradient }, () => prepareProxyIndex(shard), options.qnet.dims && proxyGradientPoints(options.qnet.dims))
      : undefined;
  const result = await graphSearch(
    scorer,
    { offsets: shard.offsets, neighbors: shard.neighbors },
    {
      k: params.k,
      variant: params.variant,
      entryPoints: params.entryPoints,
      ncandidates: params.ncandidates,
      maxIter: params.maxIter,
      proxySeeds: params.proxySeeds,
      ...(seedRows ? { seedRows } : {}),
      earlyStop: params.earlyStop,
      entryRows: shard.entryRows,
      seed: shardSeed(params.seed, position),
      shard: position,
      ...(isDead ? { isDead } : {}),
      onIteration: (p) => progress(p.iteration, p.topK),
      signal: options.signal,
    },
  );
  return { hits: global(result.hits), docsScored: result.stats.docsScored, iterations: result.stats.iterations };
}

/**
 * A large shard built before proxy indexes existed has none: seeding would brute-force inner
 * products over all its rows at each gradient point, so it walks the published way instead (with
 * the published defaults for any walk parameter the request left out) until it is rebuilt.
 */
export function walkFor(shard: Pick<DecodedShard, "proxyIndex" | "docCount">, params: SearchParams): SearchParams {
  const legacy = params.variant === "proxy" && shard.proxyIndex.length === 0 && shard.docCount >= BUILD_DEFAULTS.proxyIndexMinRows;
  return legacy ? { ...params, variant: "published" } : params;
}

interface ShardContext {
  scorer: RowScorer;
  position: number;
  progress: (iteration: number, hits: RowHit[]) => void;
  global: (hits: RowHit[]) => RowHit[];
}

/** A filtered search of one segment: its live matching rows (compiled bitmap minus dead rows), then the plan (filtered-search.ts). */
async function searchShardFiltered(
  index: LoadedIndex,
  id: string,
  shard: DecodedShard,
  dead: DeletionBitmap | undefined,
  options: SearchIndexOptions,
  filter: SearchFilter,
  { scorer, position, progress, global }: ShardContext,
): Promise<ShardResult> {
  const matching = liveMatchingRows(shard, dead, filter, `${index.label} segment ${id}`);
  const result = await searchFilteredSegment(scorer, { offsets: shard.offsets, neighbors: shard.neighbors }, matching, {
    params: options.params,
    seed: shardSeed(options.params.seed, position),
    entryRows: shard.entryRows,
    ...(filter.forcePlan ? { forcePlan: filter.forcePlan } : {}),
    ...(filter.planOptions ? { planOptions: filter.planOptions } : {}),
    shard: position,
    ...(options.batchRows ? { batchSize: options.batchRows } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    onIteration: progress,
  });
  return { hits: global(result.hits), docsScored: result.docsScored, iterations: result.iterations, plan: result.plan };
}

/**
 * Shards of equal size would otherwise sample the same local rows for the same seed; mixing in the
 * shard's position keeps their entry sets independent while a request stays reproducible.
 */
export function shardSeed(seed: number, position: number): number {
  return (seed + Math.imul(position, 0x9e3779b9)) >>> 0;
}

/** The API hits, counted against the answer's size limit one by one as their fields are decoded. */
function assembleHits(merged: readonly RowHit[], toHit: (hit: RowHit) => Hit, options: { maxAnswerBytes?: number; params: { k: number } }): Hit[] {
  const budget = new AnswerBudget(options.maxAnswerBytes ?? Infinity, options.params.k);
  return merged.map((row) => {
    const hit = toHit(row);
    budget.add(hit);
    return hit;
  });
}

function toApiHit(index: LoadedIndex, shard: DecodedShard, hit: RowHit, fields: readonly string[]): Hit {
  const entry = index.manifest.shards[hit.shard]!;
  const row = hit.row - entry.docStart;
  const out: Hit = { id: shard.ids[row]!, score: hit.score };
  if (fields.length > 0) out.fields = pickFields(shard.fields(row), fields);
  return out;
}

function resolveShards(index: LoadedIndex, requested: readonly string[] | undefined, hasTail: boolean): { segments: string[]; tail: boolean } {
  if (requested === undefined) return { segments: index.manifest.shards.map((s) => s.id), tail: hasTail };
  const segments = requested.filter((id) => id !== TAIL_SHARD_ID);
  const unknown = segments.filter((id) => index.position(id) === undefined);
  if (unknown.length > 0) {
    const has = index.manifest.shards.length > 0 ? describeList(index.manifest.shards.map((s) => s.id)) : "no segments";
    throw new SearchRequestError(
      `unknown shard${unknown.length > 1 ? "s" : ""} ${unknown.slice(0, 5).map((s) => JSON.stringify(s)).join(", ")} in index ${index.label}, which has ${has}`,
    );
  }
  if (requested.length === 0) throw new SearchRequestError("shards must name at least one shard (omit it to search them all)");
  return { segments: [...new Set(segments)], tail: segments.length < requested.length };
}

/**
 * Requested fields. A format 1 version searched without a tail stores exactly the manifest's
 * fields, so any other name is a mistake (400). Once writes are in play (a tail, or a format 2
 * version whose documents came from writes) each document has its own fields: a field a document
 * lacks is simply absent from its hit.
 */
function resolveFields(index: LoadedIndex, requested: readonly string[], hasTail: boolean): string[] {
  if (index.manifest.version === 1 && !hasTail) {
    const known = new Set(index.manifest.fields);
    const unknown = requested.filter((f) => !known.has(f));
    if (unknown.length > 0) {
      const stored = index.manifest.fields.length > 0 ? `it stores ${describeList(index.manifest.fields)}` : "it stores no fields";
      throw new SearchRequestError(`unknown field${unknown.length > 1 ? "s" : ""} ${unknown.map((f) => JSON.stringify(f)).join(", ")} for index ${index.label}: ${stored}`);
    }
  }
  return [...new Set(requested)];
}

function describeList(items: readonly string[], max = 10): string {
  const shown = items.slice(0, max).join(", ");
  return items.length > max ? `${shown}, … (${items.length} in all)` : shown;
}
