/**
 * The worker's IndexBackend: index versions from the index store (S3 prefix or folder) through a
 * verified local shard cache, searched with the ONNX q-net scorer; builds are delegated to the
 * index builder. The HTTP service (service/app.ts) owns everything before and after, including
 * the statuses of the errors thrown here (service/errors.ts).
 */
import type { CompactionRequest, SweepAnswer, SweepRequest } from "../../../shared/api/living-api.ts";
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
import { runSweep } from "./sweep/run-sweep.ts";

/** What the backend needs from the index builder (BuildManager in gpu-worker/src/index/build/). */
export interface BuildDelegate {
  start(request: BuildRequest): BuildStatus;
  get(tenant: string, jobId: string): BuildStatus | undefined;
  cancel(tenant: string, jobId: string): BuildStatus | undefined;
  /** Compactions (BuildManager.startCompaction); without it POST /v1/compactions is 501. */
  startCompaction?(request: CompactionRequest): BuildStatus;
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
  /** WORKER_MEMORY_BUDGET_BYTES (default half of the machine's memory). */
  memoryBudgetBytes?: number;
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
        ...(options.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: options.memoryBudgetBytes } : {}),
        logger,
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

  const walCache = store ? new WalCache({ store, modelId: options.runtime.manifest.modelId, dim: options.runtime.manifest.embeddingDim }) : undefined;
  // The tails count towards hypencoder_loaded_bytes; the WAL cache bounds itself (its own LRU budget).
  if (walCache && registry) registry.addMemoryContributor("wal", { bytes: () => walCache.bytes() });

  // Builds write new versions into the same store; the registry finds them on their first query.
  const builds: BuildDelegate | undefined =
    options.builds ??
    (store
      ? new BuildManager({
          runtime: options.runtime,
          store,
          logger,
          limits: options.buildLimits,
          // Compactions read base segments through the verified cache, and hold the
          // base version (a lease) while they run; a base loaded only for the compaction is unloaded
          // after it, unless a search is using it by then. A base that cannot be loaded fails in the compaction itself.
          compactionDeps: {
            openSegment: (ref) => registry!.cache.open(ref),
            // The owner worker usually holds the tail already (its searches read it).
            ...(walCache ? { knownWal: (tenant: string, index: string) => walCache.known(tenant, index) } : {}),
          },
          aroundCompaction: async (request, run) => {
            const base = { tenant: request.tenant, index: request.index, version: request.baseVersion };
            const wasLoaded = request.baseVersion > 0 && registry!.has(base);
            const lease = request.baseVersion > 0 ? await registry!.acquire(base).catch(() => undefined) : undefined;
            try {
              return await run();
            } finally {
              lease?.release();
              if (lease && !wasLoaded) registry!.unloadIfIdle(base);
            }
          },
        })
      : undefined);

  /** Runs `use` with a lease on the version (IndexRegistry.acquire), released however it ends. */
  const withVersion = async <T>(tenant: string, index: string, v: number, use: (loaded: LoadedIndex) => Promise<T>): Promise<T> => {
    if (!registry) throw new IndexNotFoundError(`index ${tenant}/${index}@${v} not found: this worker has no index store configured`);
    // Version 0: never built, so there is no manifest to read; a living index's writes are all in its tail.
    if (v === 0) return use(LoadedIndex.empty({ tenant, index }, modelOf(options.runtime), registry.cache));
    return registry.withIndex({ tenant, index, version: v }, use);
  };

  // Living indexes: the WAL tail that each read of version + tail sees.
  /** The tail a request names, read from the version's own coveredSeq (the edge's fromSeq is where it thinks that is). */
  const tailOf = async (loaded: LoadedIndex, range: TailRange | undefined): Promise<TailView | undefined> => {
    if (!range || !walCache) return undefined;
    const fromSeq = loaded.coveredSeq;
    return walCache.view(loaded.manifest.tenant, loaded.manifest.index, { fromSeq, toSeq: Math.max(fromSeq, range.toSeq) });
  };
  const shardError = (label: string) => (shard: string, err: unknown) =>
    logger.warn({ index: label, shard, err }, "shard could not be loaded; answering without it");

  return {
    registry,

    async search(input: IndexSearchInput): Promise<IndexSearchResult> {
      return withVersion(input.tenant, input.index, input.version, async (loaded) => {
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
          ...(input.filter ? { filter: input.filter } : {}),
        });
      });
    },

    async embeddingsById(tenant: string, index: string, v: number, ids: string[]): Promise<StoredEmbeddings> {
      return withVersion(tenant, index, v, (loaded) => embeddingsById(loaded, ids, shardError(loaded.label)));
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

    // Living indexes: WAL writes, documents by id, index state.
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
      return withVersion(request.tenant, request.index, request.version, async (loaded) => lookupDocument(loaded, await tailOf(loaded, request.tail), request.id));
    },

    async indexState(request: IndexStateRequest): Promise<IndexStateAnswer> {
      return withVersion(request.tenant, request.index, request.version, async (loaded) => indexState(loaded, await tailOf(loaded, request.tail)));
    },
    // The index lifecycle: compactions, sweeps, worker memory.
    startCompaction(request: CompactionRequest): BuildStatus {
      if (!builds?.startCompaction) throw new BuildsUnavailableError();
      return builds.startCompaction(request);
    },

    sweep(request: SweepRequest): Promise<SweepAnswer> {
      if (!store) throw new BuildsUnavailableError();
      return runSweep(request, { store, logger });
    },

    memory(): { loadedVersions: number; loadedBytes: number } {
      return registry?.memoryStats() ?? { loadedVersions: 0, loadedBytes: 0 };
    },

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
