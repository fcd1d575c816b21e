/**
 * What the HTTP service needs from the index side (loading, searching, building). The service owns
 * HTTP, auth, queueing, query encoding and streaming; the index side owns shards and graphs. The
 * errors the index side throws are its own (search-errors.ts, build/errors.ts), without HTTP in
 * them; the service maps them to statuses in one table (service/errors.ts).
 */
import type { CompactionRequest, SweepAnswer, SweepRequest } from "../../../shared/api/living-api.ts";
import type { BuildRequest, BuildStatus, Hit, SearchParams } from "../../../shared/api/worker-api.ts";
import type {
  DocumentAnswer,
  DocumentGetRequest,
  IndexStateAnswer,
  IndexStateRequest,
  TailRange,
  WalWriteAnswer,
  WalWriteRequest,
} from "../../../shared/api/living-api.ts";
import type { PreparedQNet } from "../model/runtime/runtime.ts";
import type { FilterPlan } from "../filter/plan.ts";
import type { SearchFilter } from "../filter/search-filter.ts";

export interface ShardProgress {
  shard: string;
  iteration: number;
  /** The shard's running top-k after this iteration. */
  hits: Hit[];
}

export interface IndexSearchInput {
  tenant: string;
  index: string;
  version: number;
  /** Shard ids (TAIL_SHARD_ID: the tail's documents); all of the version's, and the tail, when omitted. */
  shards?: string[];
  /** Living indexes: the WAL up to tail.toSeq after the version's coveredSeq hides and adds documents. */
  tail?: TailRange;
  params: SearchParams;
  fields: string[];
  qnet: PreparedQNet;
  signal: AbortSignal;
  onProgress?: (progress: ShardProgress) => void;
  /** The largest answer, in bytes (MAX_ANSWER_BYTES): past it, AnswerTooLargeError. */
  maxAnswerBytes?: number;
  /** Only documents matching it are returned (parsed by the service: filter/search-filter.ts). */
  filter?: SearchFilter;
}

export interface IndexSearchResult {
  hits: Hit[];
  docsScored: number;
  /** The most iterations any shard took. */
  iterations: number;
  shardsSearched: number;
  /** Shards that could not be searched (the answer is then partial, never silently incomplete). */
  missingShards: string[];
  /** Filtered searches: "filtered-walk" when any shard walked its graph, else "filtered-exhaustive". */
  plan?: FilterPlan;
}

export interface StoredEmbeddings {
  ids: string[];
  /** Rows in `ids` order: float16 bits or float32, model embeddingDim wide. */
  embeddings: Float32Array | Uint16Array;
  missing: string[];
}

export interface IndexBackend {
  search(input: IndexSearchInput): Promise<IndexSearchResult>;
  /** Stored embeddings of documents by id, for reranking by id. */
  embeddingsById(tenant: string, index: string, version: number, ids: string[]): Promise<StoredEmbeddings>;
  startBuild(request: BuildRequest): BuildStatus;
  getBuild(tenant: string, jobId: string): BuildStatus | undefined;
  /** Stops a queued or running job (see BuildManager.cancel); undefined when unknown to this tenant. */
  cancelBuild(tenant: string, jobId: string): BuildStatus | undefined;

  // Living indexes: WAL writes, documents by id, index state (index/living/).
  /** Embeds a write batch and stores it as wal/<seq>.hwal, create-if-absent (index/living/wal-writer.ts). */
  writeWal(request: WalWriteRequest, signal: AbortSignal): Promise<WalWriteAnswer>;
  /** The live document of version + tail; DocumentNotFoundError when there is none. */
  getDocument(request: DocumentGetRequest): Promise<DocumentAnswer>;
  /** Live counts of version + tail. */
  indexState(request: IndexStateRequest): Promise<IndexStateAnswer>;
  // The index lifecycle: compactions, sweeps, worker memory. Optional: absent → 501 / no gauges.
  /** Queues a compaction job (BuildManager.startCompaction); poll and cancel it with getBuild/cancelBuild. */
  startCompaction?(request: CompactionRequest): BuildStatus;
  /** Deletes what no kept version needs (index/sweep/run-sweep.ts). */
  sweep?(request: SweepRequest): Promise<SweepAnswer>;
  /** Loaded versions and the bytes they (and the WAL cache) hold, for the /metrics gauges. */
  memory?(): { loadedVersions: number; loadedBytes: number };
}

/** The log methods the index side uses (a pino logger has them). */
export interface IndexLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}
