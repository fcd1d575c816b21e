/**
 * One query over one loaded index version: every requested shard is searched on its own (shards are
 * independently searchable segments: their graphs never cross), then the per-shard top-k lists are
 * merged into the global top-k. Used by the HTTP backend and the `hypencoder search` CLI alike.
 *
 * A shard that cannot be opened (missing object, failed verification) is reported in
 * `missingShards` and the answer is partial; only when no shard at all can be opened is it an error.
 * Errors while searching an opened shard (scoring, cancellation) fail the whole search.
 */
import { AnswerBudget } from "./answer-budget.ts";
import type { DecodedShard } from "../../../shared/index/format.ts";
import type { Hit, SearchParams } from "../../../shared/api/worker-api.ts";
import type { PreparedQNet } from "../model/runtime/runtime.ts";
import { exhaustiveSearch } from "../search/exhaustive.ts";
import { graphSearch } from "../search/graph-search.ts";
import { type RowHit, mergeRowTopK } from "../search/topk.ts";
import type { IndexSearchResult, ShardProgress } from "./index-backend.ts";
import type { LoadedIndex } from "./index-registry.ts";
import { onnxRowScorer } from "./onnx-row-scorer.ts";
import { IndexUnavailableError, SearchRequestError } from "./search-errors.ts";

export interface SearchIndexOptions {
  /** Shard ids; all of the version's when omitted. Duplicates are searched once. */
  shards?: readonly string[];
  params: SearchParams;
  /** Stored fields to attach to each hit; each must be one of the manifest's fields. */
  fields?: readonly string[];
  /** The answer's size limit (AnswerBudget); unbounded when omitted. */
  maxAnswerBytes?: number;
  qnet: Pick<PreparedQNet, "score">;
  signal?: AbortSignal;
  onProgress?: (progress: ShardProgress) => void;
  /** Told about each shard that could not be opened (for logs); the search goes on without it. */
  onShardError?: (shardId: string, error: unknown) => void;
  /** Rows per scorer call. */
  batchRows?: number;
}

export async function searchIndex(index: LoadedIndex, options: SearchIndexOptions): Promise<IndexSearchResult> {
  const shardIds = resolveShards(index, options.shards);
  const fields = resolveFields(index, options.fields ?? []);
  options.signal?.throwIfAborted();

  const opened = await Promise.all(
    shardIds.map(async (id) => {
      try {
        return { id, shard: await index.shard(id) };
      } catch (error) {
        options.onShardError?.(id, error);
        return { id, error };
      }
    }),
  );
  const available = opened.filter((o): o is { id: string; shard: DecodedShard } => "shard" in o);
  const missingShards = opened.filter((o) => !("shard" in o)).map((o) => o.id);
  if (available.length === 0) {
    const first = opened[0] && "error" in opened[0] ? opened[0].error : undefined;
    throw new IndexUnavailableError(`index ${index.label}: none of the ${shardIds.length} shards searched could be loaded`, first);
  }
  options.signal?.throwIfAborted();

  const results = await Promise.all(available.map(({ id, shard }) => searchShard(index, id, shard, options)));
  const byPosition = new Map(available.map(({ id, shard }) => [index.position(id)!, shard]));
  const merged = mergeRowTopK(
    results.map((r) => r.hits),
    options.params.k,
  );
  return {
    hits: assembleHits(merged, (hit) => toApiHit(index, byPosition.get(hit.shard)!, hit, fields), options),
    docsScored: results.reduce((sum, r) => sum + r.docsScored, 0),
    iterations: results.reduce((most, r) => Math.max(most, r.iterations), 0),
    shardsSearched: available.length,
    missingShards,
  };
}

interface ShardResult {
  /** Hits with `shard` = position in the manifest and `row` = GLOBAL row, so ties break as in one big shard. */
  hits: RowHit[];
  docsScored: number;
  iterations: number;
}

async function searchShard(index: LoadedIndex, id: string, shard: DecodedShard, options: SearchIndexOptions): Promise<ShardResult> {
  const { params } = options;
  const position = index.position(id)!;
  const docStart = index.manifest.shards[position]!.docStart;
  const scorer = onnxRowScorer(options.qnet, shard.embeddings, shard.dim, {
    signal: options.signal,
    ...(options.batchRows ? { batchRows: options.batchRows } : {}),
  });
  const progress = (iteration: number, hits: RowHit[]) =>
    options.onProgress?.({ shard: id, iteration, hits: hits.map((h) => ({ id: shard.ids[h.row]!, score: h.score })) });
  const global = (hits: RowHit[]): RowHit[] => hits.map((h) => ({ shard: position, row: docStart + h.row, score: h.score }));

  if (params.mode === "exact") {
    const result = await exhaustiveSearch(scorer, shard.docCount, { k: params.k, shard: position, signal: options.signal, ...(options.batchRows ? { batchSize: options.batchRows } : {}) });
    progress(1, result.hits);
    return { hits: global(result.hits), docsScored: result.stats.docsScored, iterations: 1 };
  }
  // The entry set: the shard's build-time k-means medoids (if it stores any), then seeded random rows.
  const result = await graphSearch(
    scorer,
    { offsets: shard.offsets, neighbors: shard.neighbors },
    {
      k: params.k,
      entryPoints: params.entryPoints,
      ncandidates: params.ncandidates,
      maxIter: params.maxIter,
      earlyStop: params.earlyStop,
      entryRows: shard.entryRows,
      seed: shardSeed(params.seed, position),
      shard: position,
      onIteration: (p) => progress(p.iteration, p.topK),
      signal: options.signal,
    },
  );
  return { hits: global(result.hits), docsScored: result.stats.docsScored, iterations: result.stats.iterations };
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
  if (fields.length > 0) {
    const stored = shard.fields(row);
    const picked: Record<string, unknown> = {};
    for (const f of fields) if (Object.hasOwn(stored, f)) picked[f] = stored[f];
    out.fields = picked;
  }
  return out;
}

function resolveShards(index: LoadedIndex, requested: readonly string[] | undefined): string[] {
  if (requested === undefined) return index.manifest.shards.map((s) => s.id);
  const unknown = requested.filter((id) => index.position(id) === undefined);
  if (unknown.length > 0) {
    throw new SearchRequestError(
      `unknown shard${unknown.length > 1 ? "s" : ""} ${unknown.slice(0, 5).map((s) => JSON.stringify(s)).join(", ")} in index ${index.label}, ` +
        `which has ${describeList(index.manifest.shards.map((s) => s.id))}`,
    );
  }
  if (requested.length === 0) throw new SearchRequestError("shards must name at least one shard (omit it to search them all)");
  return [...new Set(requested)];
}

function resolveFields(index: LoadedIndex, requested: readonly string[]): string[] {
  const known = new Set(index.manifest.fields);
  const unknown = requested.filter((f) => !known.has(f));
  if (unknown.length > 0) {
    const stored = index.manifest.fields.length > 0 ? `it stores ${describeList(index.manifest.fields)}` : "it stores no fields";
    throw new SearchRequestError(`unknown field${unknown.length > 1 ? "s" : ""} ${unknown.map((f) => JSON.stringify(f)).join(", ")} for index ${index.label}: ${stored}`);
  }
  return [...new Set(requested)];
}

function describeList(items: readonly string[], max = 10): string {
  const shown = items.slice(0, max).join(", ");
  return items.length > max ? `${shown}, … (${items.length} in all)` : shown;
}
