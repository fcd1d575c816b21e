/**
 * The GPU worker's HTTP API, as the edge calls it: request schemas (zod, validated on the worker and
 * built on the edge) and the response frames. Both sides import this file, so they cannot drift.
 *
 * Every request is signed by the edge (see ./signing.ts) for one tenant; a request may only touch
 * that tenant's indexes.
 */
import { z } from "zod";
import { ID_PATTERN } from "../index/keys.ts";
import { REVERSE_SHARE_MAX } from "../index/manifest.ts";
import { SEED_MAX } from "../random.ts";
import { tailRangeSchema } from "./living-api.ts";
import { fieldSchemaSchema } from "../filter/schema.ts";

/** Tenant, index and shard ids: one pattern, defined with the store keys it protects. */
export { ID_PATTERN };
const id = (what: string) => z.string().regex(ID_PATTERN, `${what} must match ${ID_PATTERN.source}`);

export const tenantId = id("tenant id");
export const indexId = id("index id");

/** Limits shared by the edge's validation and the worker's. */
/**
 * The edge's limit for one attempt at a worker (its WORKER_TIMEOUT_MS default). The worker's own
 * request limit (REQUEST_TIMEOUT_MS, gpu-worker/src/service/config.ts) is shorter, so an expensive
 * query ends as the worker's 504 instead of being cut by the edge and run again on the next worker.
 */
export const DEFAULT_WORKER_TIMEOUT_MS = 25_000;

/** The largest frame (or JSON answer) the edge accepts from a worker; the worker keeps its answers below it (MAX_ANSWER_BYTES). */
export const WORKER_FRAME_LIMIT_BYTES = 64 * 2 ** 20;

/**
 * Error frames that refuse the request itself, with the status the client gets: a stream that has
 * already sent progress cannot change its HTTP status, so the code says it. The edge passes these
 * through (no failover); any other error frame is that worker's failure.
 */
export const REJECTION_FRAME_STATUS: Readonly<Record<string, number>> = { answer_too_large: 400 };

export const LIMITS = {
  queryChars: 2_000,
  kMax: 1_000,
  entryPointsMax: 1_000_000,
  ncandidatesMax: 10_000,
  maxIterMax: 1_000,
  proxySeedsMax: 10_000,
  fieldsMax: 32,
  rerankDocsMax: 1_000,
  rerankDocChars: 100_000,
  queryMaxLengthMax: 512,
  /** Search seeds seed a 32-bit generator (shared/random.ts): every value it can tell apart. */
  seedMax: SEED_MAX,
  reverseShareMax: REVERSE_SHARE_MAX,
} as const;

/** The graph walks (gpu-worker/src/search/graph-search.ts): "proxy" is the default. */
export const GRAPH_SEARCH_VARIANTS = ["proxy", "best-first", "published"] as const;
export type GraphSearchVariant = (typeof GRAPH_SEARCH_VARIANTS)[number];

/**
 * Search parameters, the one set of defaults for the API, the CLI and the worker's graph search.
 * The walk's own parameters (entryPoints, ncandidates, maxIter, proxySeeds) default per variant
 * (VARIANT_DEFAULTS) when a request leaves them out.
 */
export const SEARCH_DEFAULTS = {
  k: 10,
  mode: "approx",
  variant: "proxy",
  earlyStop: true,
  seed: 0,
} as const satisfies { variant: GraphSearchVariant } & Record<string, unknown>;

export interface WalkParams {
  /**
   * Size of the first frontier: the shard's stored k-means entry rows first, then random rows.
   * undefined (the proxy walk's default): per shard, proxyEntryPoints.
   */
  entryPoints: number | undefined;
  /** Rows expanded per step. */
  ncandidates: number;
  /** The most scoring steps. */
  maxIter: number;
  /** Rows taken from the shard's inner-product index by the q-net's gradient (variant "proxy"). */
  proxySeeds: number;
}

/**
 * "published" (and "best-first", which changes only the step) use the paper's Table 4 "Efficient 1"
 * setting, 10,000 / 64 / 16 (the paper's code defaults to nCandidates 50 with the same entry
 * points and maxIter). "proxy" starts from far fewer rows (proxyEntryPoints), then the 256 rows the
 * q-net's gradient points at, and expands fewer rows per step for longer:
 * bench/reports/graph-search*.txt measure the choice.
 */
export const VARIANT_DEFAULTS = {
  published: { entryPoints: 10_000, ncandidates: 64, maxIter: 16, proxySeeds: 0 },
  "best-first": { entryPoints: 10_000, ncandidates: 64, maxIter: 16, proxySeeds: 0 },
  proxy: { entryPoints: undefined, ncandidates: 16, maxIter: 64, proxySeeds: 256 },
} as const satisfies Readonly<Record<GraphSearchVariant, Readonly<WalkParams>>>;

/** Random rows in the proxy walk's default first frontier, as a share of the shard's rows, and at least. */
export const PROXY_RANDOM_ENTRY_SHARE = 0.00075;
export const PROXY_MIN_RANDOM_ENTRIES = 32;

/**
 * The proxy walk's first frontier when the request leaves entryPoints out: the shard's k-means
 * entry rows plus random rows, 0.075% of the shard (at least 32), so coverage keeps up with the
 * shard's size: 288 rows at 100k (recall@10 1.000 there), about 1,000 at 1M, where 288 reached only
 * 0.955 and 1,000 reached 0.985 (bench/reports/graph-search-1m.txt).
 */
export function proxyEntryPoints(rowCount: number, entryRows: number): number {
  return Math.min(rowCount, entryRows + Math.max(PROXY_MIN_RANDOM_ENTRIES, Math.ceil(rowCount * PROXY_RANDOM_ENTRY_SHARE)));
}

export function variantDefaults(variant: GraphSearchVariant): Readonly<WalkParams> {
  return VARIANT_DEFAULTS[variant];
}

const positiveInt = (max: number) => z.number().int().min(1).max(max);

export const searchParamsSchema = z
  .object({
    k: positiveInt(LIMITS.kMax).default(SEARCH_DEFAULTS.k),
    mode: z.enum(["approx", "exact"]).default(SEARCH_DEFAULTS.mode),
    /** The graph walk; its parameters below default per variant (VARIANT_DEFAULTS). */
    variant: z.enum(GRAPH_SEARCH_VARIANTS).default(SEARCH_DEFAULTS.variant),
    /** Size of the first frontier per shard: the shard's stored k-means entry rows first, then random rows. */
    entryPoints: positiveInt(LIMITS.entryPointsMax).optional(),
    ncandidates: positiveInt(LIMITS.ncandidatesMax).optional(),
    maxIter: positiveInt(LIMITS.maxIterMax).optional(),
    /** variant "proxy": rows per shard taken from its inner-product index by the q-net's gradient (0: none). */
    proxySeeds: z.number().int().min(0).max(LIMITS.proxySeedsMax).optional(),
    earlyStop: z.boolean().default(SEARCH_DEFAULTS.earlyStop),
    /** Seeds the random entry set, so a search is reproducible. */
    seed: z.number().int().min(0).max(LIMITS.seedMax).default(SEARCH_DEFAULTS.seed),
  })
  .strict();
export type SearchParams = z.infer<typeof searchParamsSchema>;
export type ResolvedSearchParams = SearchParams & WalkParams;

/**
 * The parameters with the variant's defaults filled in (what the walk runs, what a cache key holds);
 * entryPoints stays undefined for the proxy walk's per-shard default.
 */
export function resolveSearchParams(params: SearchParams): ResolvedSearchParams {
  const d = variantDefaults(params.variant);
  return {
    ...params,
    entryPoints: params.entryPoints ?? d.entryPoints,
    ncandidates: params.ncandidates ?? d.ncandidates,
    maxIter: params.maxIter ?? d.maxIter,
    proxySeeds: params.proxySeeds ?? d.proxySeeds,
  };
}

/** Index build parameters: the graph degree is the paper's (100 neighbours per document). */
export const BUILD_DEFAULTS = {
  degree: 100,
  /** Share of each document's degree slots given to reverse links (0: the paper's pure kNN graph). */
  reverseShare: 0.2,
  /** k-means medoids stored per shard as graph-search entry rows. */
  entryRows: 256,
  /**
   * Shards with at least this many rows store a proxyIndex section (an inner-product HNSW graph
   * for proxy-seeded entry rows); smaller ones are brute-forced at search time, which costs about
   * as much as an HNSW search there (gpu-worker/src/index/build/proxy-index.ts).
   */
  proxyIndexMinRows: 4096,
  /** The proxy index's HNSW connectivity (M; the base layer gets 2M). */
  proxyConnectivity: 16,
  /** The proxy index's ef during construction. */
  proxyExpansionAdd: 64,
} as const;


export const searchRequestSchema = z
  .object({
    tenant: tenantId,
    index: indexId,
    /** The index version to search (the edge resolves "active" before calling); 0 when none is built (the tail only). */
    version: z.number().int().nonnegative(),
    /**
     * The WAL batches the search must also see (living-api.ts): their upserts replace and their
     * deletes hide rows of the version's segments on every shard; the tail's own documents are scored
     * only where `shards` names TAIL_SHARD_ID (or `shards` is omitted). Absent: the version alone.
     */
    tail: tailRangeSchema.optional(),
    /** Shard ids to search; all of the version's shards (and the tail) when omitted (the edge routes subsets). */
    shards: z.array(z.string().min(1).max(64)).max(10_000).optional(),
    query: z.string().trim().min(1, "query must not be empty").max(LIMITS.queryChars),
    params: searchParamsSchema.default(searchParamsSchema.parse({})),
    /** Stored fields to return with each hit. */
    fields: z.array(z.string().min(1).max(64)).max(LIMITS.fieldsMax).default([]),
    /**
     * A metadata filter (shared/filter/filter.ts), already validated by the edge against the index's
     * declared fields; the worker parses it again against `filterFields` (its own boundary) and
     * returns only matching live documents. Requires `filterFields`.
     */
    filter: z.unknown().optional(),
    /** The index's declared filterable fields (POST /v1/indexes `fields`), sent with every filtered search. */
    filterFields: fieldSchemaSchema.optional(),
    /** Add a `qnet` frame (the q-net in the shared wire format) before the results. */
    includeQNet: z.boolean().default(false),
    /** Token limit for the query, including [CLS] and [SEP]; the model's default when omitted. */
    queryMaxLength: z.number().int().min(2).max(LIMITS.queryMaxLengthMax).optional(),
  })
  .strict();
export type SearchRequest = z.infer<typeof searchRequestSchema>;

export const rerankRequestSchema = z
  .object({
    tenant: tenantId,
    query: z.string().trim().min(1, "query must not be empty").max(LIMITS.queryChars),
    /** Texts to score; or `ids` of documents in an index version. */
    documents: z
      .array(z.object({ id: z.string().max(512).optional(), text: z.string().max(LIMITS.rerankDocChars) }).strict())
      .max(LIMITS.rerankDocsMax)
      .optional(),
    index: indexId.optional(),
    version: z.number().int().positive().optional(),
    ids: z.array(z.string().min(1).max(512)).max(LIMITS.rerankDocsMax).optional(),
    includeQNet: z.boolean().default(false),
    queryMaxLength: z.number().int().min(2).max(LIMITS.queryMaxLengthMax).optional(),
  })
  .strict()
  .refine((r) => (r.documents ? !r.ids : !!r.ids && !!r.index && !!r.version), {
    message: "give either documents, or ids with index and version",
  });
export type RerankRequest = z.infer<typeof rerankRequestSchema>;

export const qnetRequestSchema = z
  .object({
    tenant: tenantId,
    query: z.string().trim().min(1, "query must not be empty").max(LIMITS.queryChars),
    dtype: z.enum(["float32", "float16"]).default("float32"),
    queryMaxLength: z.number().int().min(2).max(LIMITS.queryMaxLengthMax).optional(),
  })
  .strict();
export type QNetRequest = z.infer<typeof qnetRequestSchema>;

/** One input object of a build: JSONL (optionally .gz) documents, or prebuilt embeddings. */
export const buildInputSchema = z.discriminatedUnion("format", [
  z.object({ format: z.literal("jsonl"), key: z.string().min(1).max(1024) }).strict(),
  z
    .object({
      format: z.literal("npy"),
      /** float32 matrix [docs, embeddingDim] */
      key: z.string().min(1).max(1024),
      /** JSONL of {"id", ...fields} lines, one per matrix row */
      idsKey: z.string().min(1).max(1024),
    })
    .strict(),
]);
export type BuildInput = z.infer<typeof buildInputSchema>;

export const buildRequestSchema = z
  .object({
    tenant: tenantId,
    index: indexId,
    version: z.number().int().positive(),
    inputs: z.array(buildInputSchema).min(1).max(1_000),
    /** Neighbours per document in the kNN graph. */
    degree: z.number().int().min(2).max(256).default(BUILD_DEFAULTS.degree),
    /**
     * Share of each document's `degree` slots given to reverse links (documents that have it among
     * their nearest): reaches documents a pure kNN graph leaves without in-edges. 0: the published
     * kNN graph.
     */
    reverseShare: z.number().min(0).max(LIMITS.reverseShareMax).default(BUILD_DEFAULTS.reverseShare),
    /**
     * k-means medoids stored per shard, which graph search scores before its random entry rows
     * (0: none). Shards with no more documents than this store none.
     */
    entryRows: z.number().int().min(0).max(4096).default(BUILD_DEFAULTS.entryRows),
    docMaxLength: z.number().int().min(2).max(512).optional(),
    /** Stored fields kept for results (besides id). `text` is stored unless omitted here. */
    storeFields: z.array(z.string().min(1).max(64)).max(LIMITS.fieldsMax).default(["text"]),
    dtype: z.enum(["float16", "float32"]).default("float16"),
    /** Target shard size; shards split on document boundaries. */
    shardBytes: z.number().int().min(1 << 16).max(2 ** 32).default(256 * 2 ** 20),
    /**
     * The index's committed write seq when the build started: the manifest records it as coveredSeq,
     * so writes acknowledged after it stay visible (as the tail) once the version is active.
     */
    coveredSeq: z.number().int().nonnegative().optional(),
    /**
     * The index's declared filterable fields: each document's values are checked against them (a
     * wrong type fails the build, naming the line and field) and stored as the shard's filter columns.
     */
    filterFields: fieldSchemaSchema.optional(),
  })
  .strict();
export type BuildRequest = z.infer<typeof buildRequestSchema>;

export const BUILD_STATES = ["queued", "reading", "encoding", "graph", "writing", "succeeded", "failed"] as const;
export type BuildState = (typeof BUILD_STATES)[number];

export interface BuildStatus {
  jobId: string;
  tenant: string;
  index: string;
  version: number;
  state: BuildState;
  progress: { docsRead: number; docsEncoded: number; docsTotal: number; graphPercent: number; bytesWritten: number };
  /** Set when failed: names the input object and line where it can. */
  error?: { code: string; message: string };
  startedAt: string;
  finishedAt?: string;
}

/** A search hit as returned to clients. */
export interface Hit {
  id: string;
  score: number;
  /** Requested stored fields. */
  fields?: Record<string, unknown>;
}

export interface SearchStats {
  docsScored: number;
  iterations: number;
  shardsSearched: number;
  ms: { queue: number; encode: number; search: number; total: number };
  /**
   * Filtered searches only: the plan that ran. A worker answers "filtered-walk" when any of its
   * shards walked its graph, else "filtered-exhaustive" (exact mode is always the latter); a merge
   * of several answers is "filtered-walk" when any of them is.
   */
  plan?: "filtered-walk" | "filtered-exhaustive";
}

export interface RerankScore {
  id: string;
  score: number;
}

/**
 * Response frames. With `Accept: application/msgpack` the worker streams them as consecutive
 * msgpack values; otherwise it answers one JSON object (the `result` or `scores` frame without `type`).
 */
export type Frame =
  | { type: "qnet"; qnet: Uint8Array }
  | { type: "progress"; shard: string; iteration: number; hits: Hit[] }
  /** `version`: the index version searched, set by the edge in public answers; workers leave it out. */
  | { type: "result"; hits: Hit[]; stats: SearchStats; partial: boolean; missingShards: string[]; version?: number }
  /** The answer to a rerank: scores sorted best first; `missing` lists ids the index did not hold. */
  | { type: "scores"; scores: RerankScore[]; missing: string[] }
  | { type: "error"; code: string; message: string };

export const MSGPACK_FRAMES_CONTENT_TYPE = "application/msgpack";
