/**
 * The worker's IndexBackend: index versions from the index store (S3 prefix or folder) through a
 * verified local shard cache, searched with the ONNX q-net scorer; builds are delegated to the
 * index builder. The HTTP service (service/app.ts) owns everything before and after, including
 * the statuses of the errors thrown here (service/errors.ts).
 */
import type { BuildRequest, BuildStatus } from "../../../shared/api/worker-api.ts";
import type { HypencoderRuntime } from "../model/runtime/runtime.ts";
import type { BlobStore } from "../store/blob-store.ts";
import { openStore } from "../store/open-store.ts";
import { BuildManager } from "./build/build-manager.ts";
import { BuildsUnavailableError } from "./build/errors.ts";
import type { BuildLimits } from "./build/limits.ts";
import { embeddingsById } from "./embeddings-by-id.ts";
import type { IndexBackend, IndexLogger, IndexSearchInput, IndexSearchResult, StoredEmbeddings } from "./index-backend.ts";
import { formatIndexRef, type IndexRef, IndexRegistry, LoadedIndex } from "./index-registry.ts";
import { IndexNotFoundError } from "./search-errors.ts";
import { ShardCache } from "./shard-cache.ts";
import { searchIndex } from "./shard-search.ts";
// Living indexes (issue 10): the WAL tail, writes, documents by id, index state.
import type { DocumentAnswer, DocumentGetRequest, IndexStateAnswer, IndexStateRequest, TailRange, WalWriteAnswer, WalWriteRequest } from "../../../shared/api/living-api.ts";
import { lookupDocument } from "./living/document-lookup.ts";
import { indexState } from "./living/index-state.ts";
import { writeWalBatch } from "./living/wal-writer.ts";
import type { TailView } from "./tail/tail-view.ts";
import { WalCache } from "./tail/wal-cache.ts";

/** What the backend needs from the index builder (BuildManager in gpu-worker/src/index/build/). */
export interface BuildDelegate {
  start(request: BuildRequest): BuildStatus;
  get(tenant: string, jobId: string): BuildStatus | undefined;
  cancel(tenant: string, jobId: string): BuildStatus | undefined;
  close?(): Promise<void>;
}

export interface IndexBackendOptions {
  runtime: HypencoderRuntime;
  /** s3://bucket/prefix or a folder (INDEX_STORE); without it no index can be found. */
  storeLocation?: string;
  /** An already open store; takes precedence over storeLocation (tests). */
  store?: BlobStore;
  cacheDir: string;
  cacheBudgetBytes: number;
  /** Versions to load (manifest and every shard) before the worker starts serving. */
  preload: IndexRef[];
  logger: IndexLogger;
  /** The index builder; by default a BuildManager writing to the index store (none without a store). */
  builds?: BuildDelegate;
  /** Limits of each build by the default builder (BUILD_* settings). */
  buildLimits?: Partial<BuildLimits>;
  /** Rows per scorer call (default DEFAULT_SCORE_BATCH_ROWS). */
  batchRows?: number;
}

export type IndexBackendImpl = IndexBackend & {
  metrics(): Record<string, number>;
  close(): Promise<void>;
  /** The registry, when a store is configured (the CLI and tests look inside). */
  readonly registry: IndexRegistry | undefined;
  /** Decoded WAL batches of living indexes (its bytes() belong in the loaded-bytes gauge). */
  readonly walCache: WalCache | undefined;
};

export async function createIndexBackend(options: IndexBackendOptions): Promise<IndexBackendImpl> {
  const { logger } = options;
  const store = options.store ?? (options.storeLocation ? openStore(options.storeLocation) : undefined);
  if (!store && options.preload.length > 0) {
    throw new Error(`preloading ${options.preload.map(formatIndexRef).join(", ")} needs an index store (INDEX_STORE)`);
  }
  const registry = store
    ? new IndexRegistry({
        store,
        cache: new ShardCache({ dir: options.cacheDir, budgetBytes: options.cacheBudgetBytes, store }),
        modelId: options.runtime.manifest.modelId,
      })
    : undefined;

  if (registry && options.preload.length > 0) {
    const started = performance.now();
    for (const { ref, error } of await registry.preload(options.preload)) {
      // A preload that fails must not stop the worker (the version may simply not be built yet);
      // queries for it retry the load and get the error.
      if (error) logger.error({ index: formatIndexRef(ref), err: error }, "preloading an index failed");
      else logger.info({ index: formatIndexRef(ref) }, "index preloaded");
    }
    logger.info({ ms: Math.round(performance.now() - started), ...registry.metrics() }, "preload done");
  }

  // Builds write new versions into the same store; the registry finds them on their first query.
  const builds: BuildDelegate | undefined = options.builds ?? (store ? new BuildManager({ runtime: options.runtime, store, logger, limits: options.buildLimits }) : undefined);

  const version = async (tenant: string, index: string, v: number): Promise<LoadedIndex> => {
    if (!registry) throw new IndexNotFoundError(`index ${tenant}/${index}@${v} not found: this worker has no index store configured`);
    // Version 0: never built, so there is no manifest to read; a living index's writes are all in its tail.
    if (v === 0) return LoadedIndex.empty({ tenant, index }, modelOf(options.runtime), registry.cache);
    return registry.get({ tenant, index, version: v });
  };

  // ─── Living indexes (issue 10) ───
  const walCache = store ? new WalCache({ store, modelId: options.runtime.manifest.modelId, dim: options.runtime.manifest.embeddingDim }) : undefined;
  /** The tail a request names, read from the version's own coveredSeq (the edge's fromSeq is where it thinks that is). */
  const tailOf = async (loaded: LoadedIndex, range: TailRange | undefined): Promise<TailView | undefined> => {
    if (!range || !walCache) return undefined;
    const fromSeq = loaded.coveredSeq;
    return walCache.view(loaded.manifest.tenant, loaded.manifest.index, { fromSeq, toSeq: Math.max(fromSeq, range.toSeq) });
  };
  // ─── end living indexes ───
  const shardError = (label: string) => (shard: string, err: unknown) =>
    logger.warn({ index: label, shard, err }, "shard could not be loaded; answering without it");

  return {
    registry,

    async search(input: IndexSearchInput): Promise<IndexSearchResult> {
      const loaded = await version(input.tenant, input.index, input.version);
      const tail = await tailOf(loaded, input.tail);
      return searchIndex(loaded, {
        ...(input.shards ? { shards: input.shards } : {}),
        ...(tail ? { tail } : {}),
        params: input.params,
        fields: input.fields,
        ...(input.maxAnswerBytes !== undefined ? { maxAnswerBytes: input.maxAnswerBytes } : {}),
        qnet: input.qnet,
        signal: input.signal,
        ...(input.onProgress ? { onProgress: input.onProgress } : {}),
        onShardError: shardError(loaded.label),
        ...(options.batchRows ? { batchRows: options.batchRows } : {}),
      });
    },

    async embeddingsById(tenant: string, index: string, v: number, ids: string[]): Promise<StoredEmbeddings> {
      const loaded = await version(tenant, index, v);
      return embeddingsById(loaded, ids, shardError(loaded.label));
    },

    startBuild(request: BuildRequest): BuildStatus {
      if (!builds) throw new BuildsUnavailableError();
      return builds.start(request);
    },

    getBuild(tenant: string, jobId: string): BuildStatus | undefined {
      return builds?.get(tenant, jobId);
    },

    cancelBuild(tenant: string, jobId: string): BuildStatus | undefined {
      return builds?.cancel(tenant, jobId);
    },

    // ─── Living indexes (issue 10) ───
    walCache,

    async writeWal(request: WalWriteRequest, signal: AbortSignal): Promise<WalWriteAnswer> {
      if (!store) throw new IndexNotFoundError(`index ${request.tenant}/${request.index} cannot be written: this worker has no index store configured`);
      return writeWalBatch(
        { store, embed: (texts, o) => options.runtime.embedDocuments(texts, o), model: modelOf(options.runtime) },
        request,
        signal,
      );
    },

    async getDocument(request: DocumentGetRequest): Promise<DocumentAnswer> {
      const loaded = await version(request.tenant, request.index, request.version);
      return lookupDocument(loaded, await tailOf(loaded, request.tail), request.id);
    },

    async indexState(request: IndexStateRequest): Promise<IndexStateAnswer> {
      const loaded = await version(request.tenant, request.index, request.version);
      return indexState(loaded, await tailOf(loaded, request.tail));
    },
    // ─── end living indexes ───

    metrics(): Record<string, number> {
      const wal = walCache?.stats();
      return { ...(registry?.metrics() ?? {}), ...(wal ? { wal_cache_bytes: wal.bytes, wal_cache_batches: wal.batches, wal_cache_fetched_batches: wal.fetchedBatches } : {}) };
    },

    async close(): Promise<void> {
      await builds?.close?.();
      await registry?.close();
    },
  };
}

/** The worker model as a manifest names it. */
function modelOf(runtime: HypencoderRuntime): { id: string; embeddingDim: number } {
  return { id: runtime.manifest.modelId, embeddingDim: runtime.manifest.embeddingDim };
}
