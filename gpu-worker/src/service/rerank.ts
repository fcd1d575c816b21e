/**
 * Rerank: score given documents with the query's q-net, either texts (embedded here with the
 * document encoder) or ids of documents stored in an index version (their stored embeddings).
 */
import type { ScoresFrame } from "../../../shared/api/frames.ts";
import type { RerankRequest, RerankScore } from "../../../shared/api/worker-api.ts";
import { encodeQNet } from "../../../shared/qnet/wire.ts";
import type { HypencoderRuntime } from "../model/runtime/runtime.ts";
import type { EmitFrame } from "./frame-stream.ts";
import type { IndexBackend } from "../index/index-backend.ts";
import type { QueryBatcher } from "./query-batcher.ts";
import type { RequestScope } from "./request-scope.ts";

export interface RerankDeps {
  batcher: QueryBatcher;
  runtime: Pick<HypencoderRuntime, "embedDocuments">;
  backend: IndexBackend;
}

async function documentsToScore(
  deps: RerankDeps,
  request: RerankRequest,
): Promise<{ ids: string[]; embeddings: Float32Array | Uint16Array; missing: string[] }> {
  if (request.documents) {
    // Documents without an id are named by their position in the request.
    const ids = request.documents.map((d, i) => d.id ?? String(i));
    return { ids, embeddings: await deps.runtime.embedDocuments(request.documents.map((d) => d.text)), missing: [] };
  }
  const stored = await deps.backend.embeddingsById(request.tenant, request.index!, request.version!, request.ids!);
  // slice(): scoring moves the array's buffer to the inference thread, and the index side may keep it.
  return { ids: stored.ids, embeddings: stored.embeddings.slice(), missing: stored.missing };
}

export async function runRerank(deps: RerankDeps, request: RerankRequest, scope: RequestScope, emit?: EmitFrame): Promise<ScoresFrame> {
  const qnet = await deps.batcher.encode(request.query, request.queryMaxLength, scope.signal);
  let values: Float32Array = new Float32Array(0);
  let docs;
  try {
    scope.signal.throwIfAborted();
    if (request.includeQNet && emit) emit({ type: "qnet", qnet: encodeQNet(await qnet.qnet()) });
    docs = await documentsToScore(deps, request);
    scope.signal.throwIfAborted();
    if (docs.ids.length > 0) values = await qnet.score(docs.embeddings);
  } finally {
    await qnet.release();
  }
  const scores: RerankScore[] = docs.ids.map((id, i) => ({ id, score: values[i]! }));
  // Best first; Array.prototype.sort is stable, so ties keep the request's order.
  scores.sort((a, b) => b.score - a.score);
  return { type: "scores", scores, missing: docs.missing };
}
