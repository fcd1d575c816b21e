/**
 * One index build: inputs in the store → validated documents → per shard: embeddings (encoded in
 * batches, or prebuilt), a kNN graph, the shard object → and last the manifest, which is what makes
 * the version exist. Shards are built and written one at a time, so memory is bounded by the shard
 * size, not the corpus; and texts are encoded as they stream in, in batches of at most ENCODE_CHUNK
 * documents and `textBytesInFlight` bytes, then dropped: a shard holds its ids, stored fields and
 * embeddings, never its texts (a shard of 100,000 unstored 1M-character texts costs no more text
 * memory than one batch).
 *
 * Limits (limits.ts): every input byte is counted as it streams, against the decompressed total and
 * gzip's ratio (input_too_large); the whole build has a wall time (build_timeout); the abort signal
 * and the time are checked on every chunk read and every encoding batch.
 *
 * The inputs are read twice. The first pass ("reading") only validates and counts, and plans the
 * shard boundaries, so a bad line 9,000,000 fails the job in seconds rather than after hours of
 * encoding, and docsTotal is known before encoding starts. The second pass encodes and writes.
 *
 * The output prefix is explicit: the service writes tenants/<t>/indexes/<i>/versions/<v>/, the CLI
 * a bare folder or S3 prefix with the same layout (manifest.json + shards/), so one implementation
 * serves both.
 *
 * Two builders of one version (a retried dispatch, two workers) cannot damage each other: each
 * writes its shards under its own attempt folder (shards/<attempt>/), and the manifest is created
 * with the store's atomic create-if-absent, so exactly one publishes and the other deletes its
 * own shards and fails with BuildConflictError. After publishing, shard objects the manifest does
 * not name (a killed attempt's leftovers) are deleted.
 */
import { randomBytes } from "node:crypto";
import type { BuildRequest, BuildState, BuildStatus } from "../../../../shared/api/worker-api.ts";
import { buildRequestSchema } from "../../../../shared/api/worker-api.ts";
import { encodeShard } from "../../../../shared/index/format.ts";
import { buildFilterColumns, encodeFilterColumns } from "../../../../shared/index/filter-columns.ts";
import type { FieldSchema } from "../../../../shared/filter/schema.ts";
import { MANIFEST_FILE, SHARDS_FOLDER, shardRelativeKey, versionPrefix } from "../../../../shared/index/keys.ts";
import { type IndexManifest, type ShardEntry, serializeIndexManifest } from "../../../../shared/index/manifest.ts";
import { float32ArrayToHalf, halfToFloat32Array } from "../../../../shared/qnet/half.ts";
import type { HypencoderRuntime } from "../../model/runtime/runtime.ts";
import { AlreadyExistsError, type BlobStore } from "../../store/blob-store.ts";
import { nodeChecksums } from "../../store/checksums.ts";
import { buildKnnGraph, reachableFraction } from "./knn-graph.ts";
import { buildProxyIndex, PROXY_GRAPH_PHASE_SHARE } from "./proxy-index.ts";
import { kmeansEntryRows } from "./entry-points.ts";
import { readDocuments } from "./documents.ts";
import { BuildConflictError, BuildInputError, BuildLimitError } from "./errors.ts";
import { InputMeter } from "./input-stream.ts";
import { type BuildLimits, DEFAULT_BUILD_LIMITS } from "./limits.ts";
import { ShardPlanner } from "./shard-plan.ts";

/** A change to a build's status: the new state and/or progress counters (absolute values). */
export interface BuildUpdate {
  state?: BuildState;
  progress?: Partial<BuildStatus["progress"]>;
}

export interface BuildDeps {
  runtime: Pick<HypencoderRuntime, "manifest" | "embedDocuments">;
  /** Where the index is written. */
  store: BlobStore;
  /** Where the inputs are read; `store` when omitted (the service: uploads and indexes share a bucket). */
  inputStore?: BlobStore;
  /** The version prefix written to ("" or ending in "/"); versionPrefix(tenant, index, version) when omitted. */
  prefix?: string;
  /** Every input key must start with this (the tenant's own objects); unchecked when omitted. */
  inputKeyPrefix?: string;
  onProgress?: (update: BuildUpdate) => void;
  signal?: AbortSignal;
  /** A graph too disconnected for search, and similar; console.warn when omitted. */
  onWarning?: (message: string) => void;
  /** Names this attempt's shard folder; random when omitted. */
  attemptId?: string;
  /** DEFAULT_BUILD_LIMITS where omitted. */
  limits?: Partial<BuildLimits>;
}

/** Texts per embedDocuments call at most: the granularity of cancellation and of docsEncoded. */
const ENCODE_CHUNK = 256;
/**
 * Random entry rows for the connectivity check. Far fewer than search's 10,000 on purpose: with that
 * many, every shard under 10,000 rows would trivially score 1; a few dozen measure the graph itself.
 */
export const REACHABILITY_ENTRIES = 64;
export const LOW_REACHABILITY = 0.9;
const READ_PROGRESS_EVERY = 1000;

const shardId = (i: number): string => `s${String(i).padStart(5, "0")}`;

interface Plan {
  counts: number[];
  degree: number;
}

interface ShardInProgress {
  ids: string[];
  fields: Array<Record<string, unknown>>;
  /** Each document's declared filterable fields (empty objects when the index declares none). */
  filterValues: Array<Record<string, unknown>>;
  embeddings: Float32Array;
}

export async function runBuild(rawRequest: BuildRequest, deps: BuildDeps): Promise<IndexManifest> {
  // Defaults and limits as the API applies them, also for callers that built the object by hand.
  const request = buildRequestSchema.parse(rawRequest);
  const { runtime, store } = deps;
  const inputStore = deps.inputStore ?? store;
  const prefix = deps.prefix ?? versionPrefix(request.tenant, request.index, request.version);
  const manifestKey = `${prefix}${MANIFEST_FILE}`;
  const report = deps.onProgress ?? (() => {});
  const warn = deps.onWarning ?? ((m: string) => console.warn(m));
  const limits: BuildLimits = { ...DEFAULT_BUILD_LIMITS, ...deps.limits };
  const deadline = performance.now() + limits.timeoutMs;
  const checkAborted = () => {
    deps.signal?.throwIfAborted();
    if (performance.now() > deadline) throw new BuildLimitError("build_timeout", `the build did not finish within its time limit (${limits.timeoutMs} ms)`);
  };
  const meter = () => new InputMeter(limits, checkAborted);
  const attempt = deps.attemptId ?? randomBytes(4).toString("hex");
  const dim = runtime.manifest.embeddingDim;
  const storeFields = [...new Set(request.storeFields)];
  const maxLength = request.docMaxLength ?? runtime.manifest.maxLength.document;
  if (maxLength > runtime.manifest.bert.maxPositions) {
    throw new BuildInputError(`docMaxLength ${maxLength} is over the model's position limit ${runtime.manifest.bert.maxPositions}`);
  }
  if (deps.inputKeyPrefix !== undefined) checkInputKeys(request, deps.inputKeyPrefix);

  const conflict = () =>
    new BuildConflictError(`version ${request.version} of index ${request.index} already exists (${manifestKey}); builds never replace a version`);
  if (await store.head(manifestKey)) throw conflict();

  const filterFields = request.filterFields && Object.keys(request.filterFields).length > 0 ? request.filterFields : undefined;
  const readOptions = { storeFields, embeddingDim: dim, ...(filterFields ? { filterFields } : {}) };
  report({ state: "reading" });
  const plan = await validateAndPlan(inputStore, request, { ...readOptions, meter: meter() }, report, checkAborted);
  const docsTotal = plan.counts.reduce((a, b) => a + b, 0);

  const written: string[] = [];
  try {
    const shards: ShardEntry[] = [];
    const builders = new Set<string>();
    let minReachable = 1;
    let docsEncoded = 0;
    let bytesWritten = 0;
    let docStart = 0;
    /** The shard being filled: its documents' ids and fields as they arrive, and their embeddings. */
    let shard: ShardInProgress | undefined;
    /** Texts read and not yet encoded: at most ENCODE_CHUNK of them and about textBytesInFlight bytes. */
    let texts: Array<{ row: number; text: string }> = [];
    let textBytes = 0;

    const encodeTexts = async () => {
      if (texts.length === 0) return;
      checkAborted();
      const batch = texts;
      texts = [];
      textBytes = 0;
      const base = docsEncoded;
      const encoded = await runtime.embedDocuments(
        batch.map((t) => t.text),
        { maxLength, onProgress: (done) => report({ progress: { docsEncoded: base + done } }) },
      );
      batch.forEach(({ row }, j) => shard!.embeddings.set(encoded.subarray(j * dim, (j + 1) * dim), row * dim));
      docsEncoded += batch.length;
      report({ progress: { docsEncoded } });
    };

    const finishShard = async (done: ShardInProgress) => {
      const index = shards.length;
      const n = done.ids.length;
      const { embeddings } = done;
      // Build the graph over exactly the values search will read back.
      if (request.dtype === "float16") halfToFloat32Array(float32ArrayToHalf(embeddings), embeddings);

      checkAborted();
      report({ state: "graph" });
      const graph = await buildKnnGraph(embeddings, dim, {
        degree: Math.max(1, plan.degree),
        hnsw: { quantization: request.dtype === "float16" ? "f16" : "f32" },
        reverseShare: request.reverseShare,
        onProgress: (f) => report({ progress: { graphPercent: Math.min(100, (100 * (docStart + (1 - PROXY_GRAPH_PHASE_SHARE) * f * n)) / docsTotal) } }),
      });
      builders.add(graph.builder);
      checkAborted();
      const proxyIndex = await buildProxyIndex(embeddings, dim, {
        ...(deps.signal ? { signal: deps.signal } : {}),
        onProgress: (f) => report({ progress: { graphPercent: Math.min(100, (100 * (docStart + (1 - PROXY_GRAPH_PHASE_SHARE * (1 - f)) * n)) / docsTotal) } }),
      });
      const entryRows = n > request.entryRows && request.entryRows > 0 ? kmeansEntryRows(embeddings, dim, { count: request.entryRows }) : undefined;
      const reachable = reachableFraction(graph, Math.min(REACHABILITY_ENTRIES, n), 0);
      minReachable = Math.min(minReachable, reachable);
      if (reachable < LOW_REACHABILITY) {
        warn(`shard ${shardId(index)}: only ${(100 * reachable).toFixed(1)}% of its ${n} documents are reachable from ${Math.min(REACHABILITY_ENTRIES, n)} random entry rows; graph search may miss the rest (raise the degree?)`);
      }

      checkAborted();
      report({ state: "writing" });
      const bytes = encodeShard(
        {
          ids: done.ids,
          fields: done.fields,
          embeddings,
          dim,
          dtype: request.dtype,
          // Every shard declares the index's degree; a smaller shard's rows are simply shorter.
          graph: { offsets: graph.offsets, neighbors: graph.neighbors, degree: plan.degree },
          entryRows,
          ...(proxyIndex ? { proxyIndex } : {}),
          // Built from the documents' declared fields, whether or not they are stored fields too.
          ...(filterFields ? { filterColumns: encodeFilterColumns(buildFilterColumns(filterFields, done.filterValues), { checksums: nodeChecksums }) } : {}),
        },
        { checksums: nodeChecksums },
      );
      const id = shardId(index);
      const key = shardRelativeKey(id, attempt);
      written.push(`${prefix}${key}`);
      await store.put(`${prefix}${key}`, bytes, { bytes: bytes.length, contentType: "application/octet-stream" });
      shards.push({ id, key, bytes: bytes.length, sha256: nodeChecksums.sha256Hex(bytes), docStart, docCount: n });
      docStart += n;
      bytesWritten += bytes.length;
      report({ progress: { bytesWritten } });
    };

    for await (const doc of readDocuments(inputStore, request.inputs, { ...readOptions, withEmbeddings: true, meter: meter() })) {
      if (shards.length >= plan.counts.length) throw inputChanged();
      const count = plan.counts[shards.length]!;
      if (!shard) {
        shard = { ids: [], fields: [], filterValues: [], embeddings: new Float32Array(count * dim) };
        report({ state: "encoding" });
      }
      const row = shard.ids.length;
      shard.ids.push(doc.id);
      shard.fields.push(doc.fields);
      shard.filterValues.push(doc.filterValues);
      if (doc.embedding) {
        shard.embeddings.set(doc.embedding, row * dim);
        docsEncoded++;
      } else {
        texts.push({ row, text: doc.text! });
        textBytes += Buffer.byteLength(doc.text!, "utf8");
        if (texts.length >= ENCODE_CHUNK || textBytes >= limits.textBytesInFlight) await encodeTexts();
      }
      if (shard.ids.length === count) {
        await encodeTexts();
        report({ progress: { docsEncoded } });
        const done = shard;
        shard = undefined;
        await finishShard(done);
      }
    }
    if (shard || shards.length !== plan.counts.length) throw inputChanged();

    const manifest: IndexManifest = {
      format: "hypencoder.index",
      version: 1,
      tenant: request.tenant,
      index: request.index,
      indexVersion: request.version,
      createdAt: new Date().toISOString(),
      model: { id: runtime.manifest.modelId, embeddingDim: dim },
      dtype: request.dtype,
      docCount: docsTotal,
      graph: { metric: "l2", degree: plan.degree, builder: [...builders].sort().join("+"), reachableFraction: minReachable, reverseShare: request.reverseShare },
      fields: storeFields,
      ...(filterFields ? { filterFields } : {}),
      shards,
      coveredSeq: request.coveredSeq ?? 0,
    };
    const body = new TextEncoder().encode(serializeIndexManifest(manifest));
    checkAborted();
    // Another builder may have published this version while we worked: never replace it. The
    // head check narrows the window on stores that ignore If-None-Match (s3rver, the dev default);
    // the create-if-absent put closes it on real S3 and in folders.
    if (await store.head(manifestKey)) throw conflict();
    await store.put(manifestKey, body, { bytes: body.length, contentType: "application/json", ifAbsent: true }).catch((e: unknown) => {
      throw e instanceof AlreadyExistsError ? conflict() : e;
    });
    report({ progress: { bytesWritten: bytesWritten + body.length } });
    await deleteUnreferencedShards(store, prefix, manifest, warn);
    return manifest;
  } catch (error) {
    // Nothing of ours was published, and our shard keys are ours alone: delete them.
    await Promise.allSettled(written.map((k) => store.delete(k)));
    throw error;
  }
}

/**
 * Once a version is published its shard set is fixed, so any other object under its shards/ is
 * garbage: a killed attempt's, or a concurrent loser's still being written (which then fails at
 * publish anyway). Best effort: a failure leaves garbage, never a broken index.
 */
async function deleteUnreferencedShards(store: BlobStore, prefix: string, manifest: IndexManifest, warn: (m: string) => void): Promise<void> {
  try {
    const keep = new Set(manifest.shards.map((s) => `${prefix}${s.key}`));
    const stale = (await store.list(`${prefix}${SHARDS_FOLDER}`)).filter((k) => !keep.has(k));
    await Promise.all(stale.map((k) => store.delete(k)));
  } catch (e) {
    warn(`could not delete leftover shard objects under ${prefix}${SHARDS_FOLDER}: ${(e as Error).message}`);
  }
}

/** The first pass: every line validated, ids unique, shard boundaries planned. */
async function validateAndPlan(
  store: BlobStore,
  request: BuildRequest,
  readOptions: { storeFields: string[]; filterFields?: FieldSchema; embeddingDim: number; meter: InputMeter },
  report: (u: BuildUpdate) => void,
  checkAborted: () => void,
): Promise<Plan> {
  const planner = new ShardPlanner({ dim: readOptions.embeddingDim, dtype: request.dtype, degree: request.degree, shardBytes: request.shardBytes });
  // id → where it first appeared, packed as input × 2³² + line to keep the map small.
  const firstSeen = new Map<string, number>();
  let docsRead = 0;
  for await (const doc of readDocuments(store, request.inputs, { ...readOptions, withEmbeddings: false })) {
    const earlier = firstSeen.get(doc.id);
    if (earlier !== undefined) {
      const input = Math.floor(earlier / 2 ** 32);
      const line = earlier % 2 ** 32;
      const first = input === doc.input ? `line ${line}` : `${inputKeyOf(request, input)} line ${line}`;
      throw new BuildInputError(`input ${doc.key} line ${doc.line}: duplicate id (first on ${first})`, `id ${JSON.stringify(doc.id.slice(0, 100))}`);
    }
    firstSeen.set(doc.id, doc.input * 2 ** 32 + doc.line);
    planner.add(doc);
    docsRead++;
    if (docsRead % READ_PROGRESS_EVERY === 0) {
      report({ progress: { docsRead } });
      checkAborted();
    }
  }
  if (docsRead === 0) throw new BuildInputError("the inputs hold no documents");
  report({ progress: { docsRead, docsTotal: docsRead } });
  const counts = planner.counts();
  return { counts, degree: Math.min(request.degree, Math.max(...counts) - 1) };
}

/** The key whose lines an input's documents come from (the ids file for npy). */
function inputKeyOf(request: BuildRequest, input: number): string {
  const i = request.inputs[input];
  return i.format === "npy" ? i.idsKey : i.key;
}

function checkInputKeys(request: BuildRequest, prefix: string): void {
  for (const input of request.inputs) {
    for (const key of input.format === "npy" ? [input.key, input.idsKey] : [input.key]) {
      if (!key.startsWith(prefix)) throw new BuildInputError(`input ${key}: not under ${prefix}; a build reads only its tenant's objects`);
    }
  }
}

const inputChanged = () => new BuildInputError("the inputs changed while the index was being built; build again");
