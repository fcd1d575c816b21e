/**
 * One compaction of a living index (DESIGN: "Compaction"; request: living-api.ts
 * compactionRequestSchema): base version B (coveredSeq c) + the WAL batches (c, toSeq] → version V,
 * a format 2 manifest with coveredSeq = toSeq.
 *
 *   read B's manifest (none for B = 0) → read and fold the tail → per kept segment: the rows the
 *   tail hides (an upsert or delete of the same id) → new deletion bitmaps where any were added
 *   (versions/vV/deletes/<segment>.hxd; unchanged bitmaps stay referenced) → the merge policy
 *   (merge-policy.ts) → new segments from the tail's live documents (and merged live rows), with
 *   their embeddings from the WAL (no re-encoding) and a kNN graph and entry rows built exactly as
 *   builds do → the manifest, LAST, create-if-absent.
 *
 * Segments of B are kept by reference: a v1 key k of version B becomes versions/vB/k (v2 keys are
 * relative to the index prefix) and a v1 id s becomes vBBBBBB-s, so ids stay unique across versions.
 *
 * A compaction killed at any point before the manifest put leaves no version V (the edge keeps
 * serving B). Its new segment objects are under its own attempt folder and deleted on failure;
 * deletion bitmaps are not: their key has no attempt, and two attempts of one V write identical
 * bytes (same base, same immutable WAL range), so deleting ours could delete the winner's. The
 * sweeper removes them with the rest of a version that never became active.
 */
import { randomBytes } from "node:crypto";
import { BUILD_DEFAULTS } from "../../../../shared/api/worker-api.ts";
import { type CompactionRequest, compactionRequestSchema } from "../../../../shared/api/living-api.ts";
import { DeletionBitmap, decodeDeletionBitmap, encodeDeletionBitmap } from "../../../../shared/index/deletion-bitmap.ts";
import { IndexFormatError } from "../../../../shared/index/errors.ts";
import { type DecodedShard, decodeShard, encodeShard, type ShardDtype } from "../../../../shared/index/format.ts";
import {
  deletesRelativeKey,
  formatVersion,
  indexPrefix,
  MANIFEST_FILE,
  SHARDS_FOLDER,
  shardRelativeKey,
  validateId,
  versionFolder,
  versionPrefix,
} from "../../../../shared/index/keys.ts";
import { coveredSeqOf, type IndexManifest, manifestKeyBase, parseIndexManifest, serializeIndexManifest, type ShardEntry } from "../../../../shared/index/manifest.ts";
import { buildFilterColumns, encodeFilterColumns, rowFieldValues } from "../../../../shared/index/filter-columns.ts";
import { declaredFieldValues, storedFilterColumns } from "../../filter/segment-columns.ts";
import { float32ArrayToHalf, halfToFloat32Array } from "../../../../shared/qnet/half.ts";
import { AlreadyExistsError, type BlobStore, isNotFound } from "../../store/blob-store.ts";
import { nodeChecksums } from "../../store/checksums.ts";
import type { BuildUpdate } from "../build/run-build.ts";
import { BuildConflictError, BuildLimitError } from "../build/errors.ts";
import { kmeansEntryRows } from "../build/entry-points.ts";
import { buildKnnGraph, reachableFraction } from "../build/knn-graph.ts";
import { buildProxyIndex, PROXY_GRAPH_PHASE_SHARE } from "../build/proxy-index.ts";
import { LOW_REACHABILITY, REACHABILITY_ENTRIES } from "../build/run-build.ts";
import { ShardPlanner } from "../build/shard-plan.ts";
import type { ShardRef } from "../shard-cache.ts";
import type { WalBatch } from "../../../../shared/index/wal.ts";
import { foldTail, readWalRange } from "../tail/wal-range.ts";
import { CompactionInputError } from "./errors.ts";
import { MERGE_POLICY, type MergePolicy, planMerges } from "./merge-policy.ts";

/** A segment opened for reading; release() when done (a ShardCache handle fits). */
export interface OpenedSegment {
  readonly shard: DecodedShard;
  release(): void;
}

export interface CompactionDeps {
  store: BlobStore;
  /** The worker model: the base and every WAL batch must have been embedded by it. */
  model: { modelId: string; embeddingDim: number };
  /** WAL batches already at hand (the worker's WalCache.known); every batch is fetched when omitted. */
  knownWal?: (tenant: string, index: string) => (seq: number) => WalBatch | null | undefined;
  /** Opens a segment of the base (the worker's ShardCache); downloaded and verified directly when omitted. */
  openSegment?: (ref: ShardRef) => Promise<OpenedSegment>;
  onProgress?: (update: BuildUpdate) => void;
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
  /** Names this attempt's segment folder; random when omitted. */
  attemptId?: string;
  /** Wall time of the whole compaction (BUILD_TIMEOUT_MS); 12 h when omitted. */
  timeoutMs?: number;
  /** Target size of a new segment (as a build's shardBytes); 256 MiB when omitted. */
  shardBytes?: number;
  /** MERGE_POLICY when omitted (tests lower it). */
  mergePolicy?: Partial<MergePolicy>;
}

export interface CompactionResult {
  manifest: IndexManifest;
  stats: {
    tailBatches: number;
    /** Live documents of the tail (written into new segments). */
    tailDocs: number;
    /** Rows of kept segments this compaction newly marked deleted. */
    rowsHidden: number;
    segmentsKept: number;
    segmentsMerged: number;
    segmentsDropped: number;
    segmentsWritten: number;
    /** Live rows of merged segments rewritten into the merged segment. */
    rowsMerged: number;
  };
}

const DEFAULT_SHARD_BYTES = 256 * 2 ** 20;
const DEFAULT_TIMEOUT_MS = 12 * 3600_000;

/** A segment of the new version, as its manifest entry will be (key relative to the index prefix). */
interface Segment {
  entry: ShardEntry;
  /** The rows marked deleted, once read (undefined: not read, none added). */
  bitmap?: DeletionBitmap;
  /** Whether this compaction added rows to the bitmap (then it is written anew). */
  changed: boolean;
}

/** Documents bound for new segments, in order. */
interface NewDocs {
  ids: string[];
  fields: Record<string, unknown>[];
  /** Each document's declared filterable field values (for the new segment's filter columns). */
  filterValues: Record<string, unknown>[];
  /** One Float32Array row per document. */
  rows: Float32Array[];
}

export async function runCompaction(rawRequest: CompactionRequest, deps: CompactionDeps): Promise<CompactionResult> {
  const request = compactionRequestSchema.parse(rawRequest);
  const { tenant, index, baseVersion, version, toSeq } = request;
  const { store } = deps;
  const { modelId, embeddingDim: dim } = deps.model;
  const root = indexPrefix(tenant, index);
  const manifestKey = `${versionPrefix(tenant, index, version)}${MANIFEST_FILE}`;
  const report = deps.onProgress ?? (() => {});
  const warn = deps.onWarning ?? ((m: string) => console.warn(m));
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = performance.now() + timeoutMs;
  const checkAborted = () => {
    deps.signal?.throwIfAborted();
    if (performance.now() > deadline) throw new BuildLimitError("build_timeout", `the compaction did not finish within its time limit (${timeoutMs} ms)`);
  };
  const policy: MergePolicy = { ...MERGE_POLICY, ...deps.mergePolicy };
  const attempt = deps.attemptId ?? randomBytes(4).toString("hex");
  const open = deps.openSegment ?? ((ref: ShardRef) => openDirectly(store, ref));
  const conflict = () => new BuildConflictError(`version ${version} of index ${index} already exists (${manifestKey}); compactions never replace a version`);

  if (await store.head(manifestKey)) throw conflict();
  report({ state: "reading" });

  // ── The base ───────────────────────────────────────────────────────────────────────────────
  const base = baseVersion === 0 ? undefined : await readBase(store, tenant, index, baseVersion, modelId, dim);
  const coveredSeq = base ? coveredSeqOf(base) : 0;
  if (toSeq < coveredSeq) {
    throw new CompactionInputError("invalid_request", `toSeq ${toSeq} is below the coveredSeq ${coveredSeq} of base version ${baseVersion}`);
  }
  const dtype: ShardDtype = base?.dtype ?? request.dtype ?? "float16";
  if (base && request.dtype && request.dtype !== base.dtype) warn(`compaction keeps the base's dtype ${base.dtype} (asked: ${request.dtype}): a version has one dtype`);
  const degree = request.degree ?? (base && base.graph.degree > 0 ? base.graph.degree : BUILD_DEFAULTS.degree);
  const reverseShare = base?.graph.reverseShare ?? BUILD_DEFAULTS.reverseShare;
  // The index's declared fields (the request's, else the base's): new and merged segments get columns for them.
  const requestedFields = request.filterFields ?? base?.filterFields;
  const filterFields = requestedFields && Object.keys(requestedFields).length > 0 ? requestedFields : undefined;
  const segments: Segment[] = (base?.shards ?? []).map((s) => ({ entry: asIndexRelative(s, base!, baseVersion), changed: false }));

  // ── The tail ───────────────────────────────────────────────────────────────────────────────
  checkAborted();
  const batches = await readWalRange(store, tenant, index, { fromSeq: coveredSeq, toSeq }, {
    ...(deps.signal ? { signal: deps.signal } : {}),
    ...(deps.knownWal ? { known: deps.knownWal(tenant, index) } : {}),
  });
  for (const b of batches) {
    if (b.modelId !== modelId || b.dim !== dim) {
      throw new CompactionInputError("model_mismatch", `WAL batch ${b.seq} was embedded by model ${b.modelId.slice(0, 12)}… (dim ${b.dim}), not the worker's ${modelId.slice(0, 12)}… (dim ${dim})`);
    }
  }
  const tail = foldTail(batches);
  report({ progress: { docsRead: tail.live.size } });

  // ── Rows the tail hides: each kept segment's ids against the ids the tail touches ───────────
  let rowsHidden = 0;
  for (const segment of segments) {
    checkAborted();
    if (segment.entry.deletes) segment.bitmap = await readBitmap(store, root, segment.entry);
    if (tail.touched.size === 0) continue;
    const opened = await open(segmentRef(root, segment.entry));
    try {
      checkSegment(opened.shard, segment.entry, dim, dtype);
      const bitmap = segment.bitmap?.copy() ?? new DeletionBitmap(segment.entry.docCount);
      let added = 0;
      opened.shard.ids.forEach((id, row) => {
        if (tail.touched.has(id) && bitmap.add(row)) added++;
      });
      if (added > 0) {
        segment.bitmap = bitmap;
        segment.changed = true;
        rowsHidden += added;
      }
    } finally {
      opened.release();
    }
  }

  // ── The merge policy ───────────────────────────────────────────────────────────────────────
  const plan = planMerges(
    segments.map((s) => ({ id: s.entry.id, docCount: s.entry.docCount, deleted: s.bitmap?.count ?? 0 })),
    tail.live.size,
    policy,
  );
  const byId = new Map(segments.map((s) => [s.entry.id, s]));
  const mergedDocs: NewDocs = { ids: [], fields: [], filterValues: [], rows: [] };
  for (const id of plan.merge) {
    checkAborted();
    const segment = byId.get(id)!;
    const opened = await open(segmentRef(root, segment.entry));
    try {
      const shard = opened.shard;
      checkSegment(shard, segment.entry, dim, dtype);
      // Stored fields need not hold the filterable ones: the merged columns come from the source columns.
      const columns = filterFields ? storedFilterColumns(shard, segment.entry.key) : null;
      for (let row = 0; row < shard.docCount; row++) {
        if (segment.bitmap?.has(row)) continue;
        mergedDocs.ids.push(shard.ids[row]!);
        mergedDocs.fields.push(shard.fields(row));
        mergedDocs.filterValues.push(filterFields && columns ? declaredFieldValues(filterFields, rowFieldValues(columns, row)) : {});
        mergedDocs.rows.push(rowAsFloat32(shard, row));
      }
    } finally {
      opened.release();
    }
    report({ progress: { docsRead: tail.live.size + mergedDocs.ids.length } });
  }
  const tailDocs: NewDocs = { ids: [], fields: [], filterValues: [], rows: [] };
  for (const doc of tail.live.values()) {
    tailDocs.ids.push(doc.id);
    tailDocs.fields.push(doc.batch.upsert[doc.row]!.fields);
    tailDocs.filterValues.push(filterFields ? declaredFieldValues(filterFields, doc.batch.upsert[doc.row]!.fields) : {});
    tailDocs.rows.push(doc.batch.embeddings.slice(doc.row * dim, (doc.row + 1) * dim));
  }
  const groups: Array<{ kind: "m" | "t"; docs: NewDocs }> = [];
  if (plan.mergeTail) groups.push({ kind: "m", docs: concatDocs(mergedDocs, tailDocs) });
  else {
    if (mergedDocs.ids.length > 0) groups.push({ kind: "m", docs: mergedDocs });
    if (tailDocs.ids.length > 0) groups.push({ kind: "t", docs: tailDocs });
  }
  const docsTotal = groups.reduce((n, g) => n + g.docs.ids.length, 0);
  report({ progress: { docsTotal, docsEncoded: docsTotal } });

  // ── Writing: bitmaps, then new segments, then the manifest ────────────────────────────────
  const written: string[] = [];
  try {
    let bytesWritten = 0;
    const kept: ShardEntry[] = [];
    for (const id of plan.keep) {
      checkAborted();
      const segment = byId.get(id)!;
      const entry: ShardEntry = { ...segment.entry };
      if (segment.changed) {
        const bytes = encodeDeletionBitmap(segment.bitmap!);
        const key = deletesRelativeKey(version, segment.entry.id);
        await store.put(root + key, bytes, { bytes: bytes.length, contentType: "application/octet-stream" });
        entry.deletes = { key, bytes: bytes.length, sha256: nodeChecksums.sha256Hex(bytes), count: segment.bitmap!.count };
        bytesWritten += bytes.length;
        report({ state: "writing", progress: { bytesWritten } });
      }
      kept.push(entry);
    }

    const builders = new Set<string>(base && plan.keep.length > 0 ? base.graph.builder.split("+") : []);
    let reachable = base && plan.keep.length > 0 ? base.graph.reachableFraction : 1;
    const created: ShardEntry[] = [];
    let docsDone = 0;
    for (const group of groups) {
      const planner = new ShardPlanner({ dim, dtype, degree, shardBytes: deps.shardBytes ?? DEFAULT_SHARD_BYTES });
      group.docs.ids.forEach((id, i) => planner.add({ id, fields: group.docs.fields[i]! }));
      let start = 0;
      for (const [n, count] of planner.counts().entries()) {
        checkAborted();
        const id = `${formatVersion(version)}-${group.kind}${String(n).padStart(5, "0")}`;
        const embeddings = new Float32Array(count * dim);
        for (let r = 0; r < count; r++) embeddings.set(group.docs.rows[start + r]!, r * dim);
        // Build the graph over exactly the values search will read back.
        if (dtype === "float16") halfToFloat32Array(float32ArrayToHalf(embeddings), embeddings);
        report({ state: "graph" });
        const done = docsDone;
        const graph = await buildKnnGraph(embeddings, dim, {
          degree,
          hnsw: { quantization: dtype === "float16" ? "f16" : "f32" },
          reverseShare,
          onProgress: (f) => report({ progress: { graphPercent: Math.min(100, (100 * (done + (1 - PROXY_GRAPH_PHASE_SHARE) * f * count)) / docsTotal) } }),
        });
        builders.add(graph.builder);
        checkAborted();
        const proxyIndex = await buildProxyIndex(embeddings, dim, {
          ...(deps.signal ? { signal: deps.signal } : {}),
          onProgress: (f) => report({ progress: { graphPercent: Math.min(100, (100 * (done + (1 - PROXY_GRAPH_PHASE_SHARE * (1 - f)) * count)) / docsTotal) } }),
        });
        const entryRows = count > BUILD_DEFAULTS.entryRows ? kmeansEntryRows(embeddings, dim, { count: BUILD_DEFAULTS.entryRows }) : undefined;
        const fraction = reachableFraction(graph, Math.min(REACHABILITY_ENTRIES, count), 0);
        reachable = Math.min(reachable, fraction);
        if (fraction < LOW_REACHABILITY) warn(`segment ${id}: only ${(100 * fraction).toFixed(1)}% of its ${count} documents are reachable from random entry rows`);
        checkAborted();
        report({ state: "writing" });
        const bytes = encodeShard(
          {
            ids: group.docs.ids.slice(start, start + count),
            fields: group.docs.fields.slice(start, start + count),
            embeddings,
            dim,
            dtype,
            graph: { offsets: graph.offsets, neighbors: graph.neighbors, degree },
            entryRows,
            ...(proxyIndex ? { proxyIndex } : {}),
            ...(filterFields
              ? { filterColumns: encodeFilterColumns(buildFilterColumns(filterFields, group.docs.filterValues.slice(start, start + count)), { checksums: nodeChecksums }) }
              : {}),
          },
          { checksums: nodeChecksums },
        );
        const key = `${versionFolder(version)}${shardRelativeKey(id, attempt)}`;
        written.push(root + key);
        await store.put(root + key, bytes, { bytes: bytes.length, contentType: "application/octet-stream" });
        created.push({ id, key, bytes: bytes.length, sha256: nodeChecksums.sha256Hex(bytes), docStart: 0, docCount: count });
        bytesWritten += bytes.length;
        docsDone += count;
        start += count;
        report({ progress: { bytesWritten, graphPercent: Math.min(100, (100 * docsDone) / docsTotal) } });
      }
    }

    let docStart = 0;
    const shards = [...kept, ...created].map((s) => {
      const entry = { ...s, docStart };
      docStart += s.docCount;
      return entry;
    });
    const fields = [...new Set([...(base?.fields ?? []), ...groups.flatMap((g) => g.docs.fields.flatMap((f) => Object.keys(f)))])];
    const manifest: IndexManifest = {
      format: "hypencoder.index",
      version: 2,
      tenant,
      index,
      indexVersion: version,
      createdAt: new Date().toISOString(),
      model: { id: modelId, embeddingDim: dim },
      dtype,
      docCount: docStart,
      graph: {
        metric: "l2",
        // Every new segment declares `degree`; kept ones declare the base's.
        degree: Math.max(degree, plan.keep.length > 0 ? (base?.graph.degree ?? 0) : 0),
        builder: builders.size > 0 ? [...builders].sort().join("+") : "exact",
        reachableFraction: reachable,
        reverseShare,
      },
      fields,
      ...(filterFields ? { filterFields } : {}),
      shards,
      coveredSeq: toSeq,
    };
    const body = new TextEncoder().encode(serializeIndexManifest(manifest));
    checkAborted();
    if (await store.head(manifestKey)) throw conflict();
    await store.put(manifestKey, body, { bytes: body.length, contentType: "application/json", ifAbsent: true }).catch((e: unknown) => {
      throw e instanceof AlreadyExistsError ? conflict() : e;
    });
    report({ progress: { bytesWritten: bytesWritten + body.length, graphPercent: 100 } });
    await deleteUnreferencedSegments(store, root, version, manifest, warn);
    return {
      manifest,
      stats: {
        tailBatches: tail.batches,
        tailDocs: tail.live.size,
        rowsHidden,
        segmentsKept: plan.keep.length,
        segmentsMerged: plan.merge.length,
        segmentsDropped: plan.drop.length,
        segmentsWritten: created.length,
        rowsMerged: mergedDocs.ids.length,
      },
    };
  } catch (error) {
    // Our segment keys are ours alone (the attempt folder): delete them. Bitmaps stay (see above).
    await Promise.allSettled(written.map((k) => store.delete(k)));
    throw error;
  }
}

/** The base manifest, checked against the request and the worker's model. */
async function readBase(store: BlobStore, tenant: string, index: string, version: number, modelId: string, dim: number): Promise<IndexManifest> {
  const key = `${versionPrefix(tenant, index, version)}${MANIFEST_FILE}`;
  let bytes: Uint8Array;
  try {
    bytes = await store.get(key);
  } catch (e) {
    if (isNotFound(e)) throw new CompactionInputError("base_not_found", `base version ${version} of index ${index} has no manifest`);
    throw e;
  }
  const manifest = parseIndexManifest(new TextDecoder().decode(bytes), key);
  if (manifest.tenant !== tenant || manifest.index !== index || manifest.indexVersion !== version) {
    throw new IndexFormatError(`index manifest ${key} describes ${manifest.tenant}/${manifest.index}@${manifest.indexVersion}`);
  }
  if (manifest.model.id !== modelId || manifest.model.embeddingDim !== dim) {
    throw new CompactionInputError("model_mismatch", `base version ${version} was built with model ${manifest.model.id.slice(0, 12)}…, not the worker's ${modelId.slice(0, 12)}…`);
  }
  return manifest;
}

/** A base shard entry as the new (format 2) manifest names it: key relative to the index prefix, id unique. */
function asIndexRelative(entry: ShardEntry, base: IndexManifest, baseVersion: number): ShardEntry {
  if (base.version === 2) return { ...entry };
  const { deletes: _none, ...rest } = entry;
  const id = `${formatVersion(baseVersion)}-${entry.id}`;
  try {
    validateId(id, "segment");
  } catch {
    throw new IndexFormatError(`shard id ${JSON.stringify(entry.id)} of version ${baseVersion} is too long to keep as segment ${id}`);
  }
  return { ...rest, id, key: `${versionFolder(baseVersion)}${entry.key}` };
}

function segmentRef(root: string, entry: ShardEntry): ShardRef {
  return { key: root + entry.key, bytes: entry.bytes, sha256: entry.sha256 };
}

async function openDirectly(store: BlobStore, ref: ShardRef): Promise<OpenedSegment> {
  const bytes = await store.get(ref.key);
  return { shard: decodeShard(bytes, { bytes: ref.bytes, sha256: ref.sha256 }, { label: ref.key, checksums: nodeChecksums }), release() {} };
}

async function readBitmap(store: BlobStore, root: string, entry: ShardEntry): Promise<DeletionBitmap> {
  const d = entry.deletes!;
  const key = root + d.key;
  const bytes = await store.get(key);
  if (bytes.length !== d.bytes || nodeChecksums.sha256Hex(bytes) !== d.sha256) throw new IndexFormatError(`deletion bitmap ${key}: size or sha256 differs from the manifest`);
  const bitmap = decodeDeletionBitmap(bytes, entry.docCount, key);
  if (bitmap.count !== d.count) throw new IndexFormatError(`deletion bitmap ${key}: ${bitmap.count} rows deleted, the manifest says ${d.count}`);
  return bitmap;
}

function checkSegment(shard: DecodedShard, entry: ShardEntry, dim: number, dtype: ShardDtype): void {
  if (shard.docCount !== entry.docCount || shard.dim !== dim || shard.dtype !== dtype) {
    throw new IndexFormatError(`segment ${entry.key}: ${shard.docCount} × ${shard.dim} ${shard.dtype}, the manifest says ${entry.docCount} × ${dim} ${dtype}`);
  }
}

function rowAsFloat32(shard: DecodedShard, row: number): Float32Array {
  const { dim } = shard;
  const values = shard.embeddings.subarray(row * dim, (row + 1) * dim);
  return values instanceof Uint16Array ? halfToFloat32Array(values) : values.slice();
}

function concatDocs(a: NewDocs, b: NewDocs): NewDocs {
  return { ids: [...a.ids, ...b.ids], fields: [...a.fields, ...b.fields], filterValues: [...a.filterValues, ...b.filterValues], rows: [...a.rows, ...b.rows] };
}

/** After publishing, segment objects under versions/vV/shards/ that the manifest does not name are a killed attempt's. */
async function deleteUnreferencedSegments(store: BlobStore, root: string, version: number, manifest: IndexManifest, warn: (m: string) => void): Promise<void> {
  const folder = `${root}${versionFolder(version)}${SHARDS_FOLDER}`;
  try {
    const base = manifestKeyBase(manifest, `${root}${versionFolder(version)}`);
    const keep = new Set(manifest.shards.map((s) => base + s.key));
    const stale = (await store.list(folder)).filter((k) => !keep.has(k));
    await Promise.all(stale.map((k) => store.delete(k)));
  } catch (e) {
    warn(`could not delete leftover segment objects under ${folder}: ${(e as Error).message}`);
  }
}
