/**
 * One search, after admission: encode the query (dynamically batched; its q-net stays in the
 * inference thread), let the index side search with it, and assemble the result frame with timings.
 * The q-net is released however the search ends; its weights come out only for includeQNet.
 */
import type { ResultFrame } from "../../../shared/api/frames.ts";
import type { SearchRequest } from "../../../shared/api/worker-api.ts";
import { encodeQNet } from "../../../shared/qnet/wire.ts";
import type { EmitFrame } from "./frame-stream.ts";
import { checkAnswerSize } from "../index/answer-budget.ts";
import type { IndexBackend } from "../index/index-backend.ts";
import type { ServiceMetrics } from "./metrics.ts";
import type { QueryBatcher } from "./query-batcher.ts";
import { prepareSearchFilter } from "../filter/search-filter.ts";
import type { RequestScope } from "./request-scope.ts";

export interface SearchDeps {
  batcher: QueryBatcher;
  backend: IndexBackend;
  metrics: ServiceMetrics;
  /** The largest answer (MAX_ANSWER_BYTES), below the edge's frame limit. */
  maxAnswerBytes: number;
}

/** `emit` is given only for frame responses: it receives the q-net (if asked for) and progress. */
export async function runSearch(deps: SearchDeps, request: SearchRequest, scope: RequestScope, emit?: EmitFrame): Promise<ResultFrame> {
  const { signal } = scope;
  // Before any model work: a bad filter is the client's 400 (FilterError).
  const filter = request.filter === undefined ? undefined : prepareSearchFilter(request.filter, request.filterFields);
  const encodeStart = performance.now();
  const qnet = await deps.batcher.encode(request.query, request.queryMaxLength, signal);
  const encodeMs = performance.now() - encodeStart;
  let result;
  let searchStart;
  try {
    signal.throwIfAborted();
    // The q-net is binary, so it only travels as a frame; a JSON answer ignores includeQNet.
    if (request.includeQNet && emit) emit({ type: "qnet", qnet: encodeQNet(await qnet.qnet()) });
    searchStart = performance.now();
    result = await deps.backend.search({
      tenant: request.tenant,
      index: request.index,
      version: request.version,
      shards: request.shards,
      ...(request.tail ? { tail: request.tail } : {}),
      params: request.params,
      fields: request.fields,
      ...(filter ? { filter } : {}),
      qnet,
      signal,
      maxAnswerBytes: deps.maxAnswerBytes,
      onProgress: emit && ((p) => emit({ type: "progress", shard: p.shard, iteration: p.iteration, hits: p.hits }, { droppable: true })),
    });
  } finally {
    await qnet.release();
  }
  // The index side counts as it assembles; checked here too, for any backend.
  checkAnswerSize(result.hits, deps.maxAnswerBytes, request.params.k);
  const searchMs = performance.now() - searchStart;
  deps.metrics.searchSeconds.observe(searchMs / 1000);
  return {
    type: "result",
    hits: result.hits,
    stats: {
      docsScored: result.docsScored,
      iterations: result.iterations,
      shardsSearched: result.shardsSearched,
      ms: { queue: scope.queuedMs, encode: encodeMs, search: searchMs, total: performance.now() - scope.startedAt },
      ...(result.plan ? { plan: result.plan } : {}),
    },
    partial: result.missingShards.length > 0,
    missingShards: result.missingShards,
  };
}
