/**
 * Which index versions this worker can search, and their open shards.
 *
 * `tenant/index@version` resolves to the version prefix in the store; its manifest.json is read,
 * validated and checked against the worker's model (an index embedded by another model must not be
 * searched: its vectors mean nothing to this model's q-nets). A version without a manifest does not
 * exist (the builder writes it last), so it is IndexNotFoundError, never a half-built index.
 *
 * Shards open through the ShardCache (download, sha256 verify, decode) on first use and stay pinned
 * in memory while their version is loaded, so a query never pays a decode. Loads are single-flight:
 * concurrent first queries share one manifest read and one open per shard. Failures are not cached,
 * so a later query retries (a version built since, a shard object repaired).
 */
import { DeletionBitmap, decodeDeletionBitmap } from "../../../shared/index/deletion-bitmap.ts";
import { IndexFormatError } from "../../../shared/index/errors.ts";
import type { DecodedShard } from "../../../shared/index/format.ts";
import { indexPrefix, MANIFEST_FILE, versionPrefix } from "../../../shared/index/keys.ts";
import { coveredSeqOf, type IndexManifest, manifestKeyBase, parseIndexManifest, type ShardEntry } from "../../../shared/index/manifest.ts";
import { filterBitmapBytes } from "../filter/search-filter.ts";
import { NotFoundError, type BlobStore } from "../store/blob-store.ts";
import { nodeChecksums } from "../store/checksums.ts";
import type { IndexLogger } from "./index-backend.ts";
import { prepareProxyIndex, proxyIndexBytes } from "./proxy-index-reader.ts";
import { DEFAULT_WORKER_MEMORY_BUDGET_BYTES, MemoryBudget, type MemoryContributor } from "./memory-budget.ts";
import { IndexNotFoundError, ModelMismatchError } from "./search-errors.ts";
import type { ShardCache, ShardHandle } from "./shard-cache.ts";
import type { TailView } from "./tail/tail-view.ts";

export interface IndexRef {
  tenant: string;
  index: string;
  version: number;
}

export function formatIndexRef(ref: IndexRef): string {
  return `${ref.tenant}/${ref.index}@${ref.version}`;
}

/**
 * One loaded index version: its manifest and its shards (segments), opened on demand, with what a
 * living index adds (manifest format 2): deletion bitmaps, verified like shards; an id → row map
 * per segment, built the first time a tail or a lookup by id needs it; and the dead-row mask of
 * each segment as one tail sees it (stored bitmap ∪ rows whose id the tail touched), cached.
 *
 * Version 0 is an index never built (LoadedIndex.empty): no manifest, no segments, coveredSeq 0;
 * everything it holds is in the tail.
 */
export class LoadedIndex {
  private readonly positions: Map<string, number>;
  /** Opens in flight or done; a failed open is removed so the next call retries. */
  private readonly opening = new Map<string, Promise<ShardHandle>>();
  /** Opened handles, for metrics and close(). */
  private readonly handles = new Map<string, ShardHandle>();
  /** Deletion bitmaps being read or read (verified); a failed read is removed so the next call retries. */
  private readonly deletions = new Map<string, Promise<DeletionBitmap | undefined>>();
  private readonly deletionBytes = new Map<string, number>();
  private readonly idMaps = new Map<string, Promise<ReadonlyMap<string, number>>>();
  /** Estimated heap bytes of each built id map (the id strings are the shard's own). */
  private readonly idMapBytes = new Map<string, number>();
  /** Per tail (at most DEAD_MASK_TAILS, oldest first): shard id → its dead rows (undefined: none). */
  private readonly deadMasks = new Map<TailView, Map<string, Promise<DeletionBitmap | undefined>>>();
  private readonly deadMaskBytes = new Map<TailView, number>();
  private closed = false;
  /** The prefix the manifest's shard and deletes keys are relative to (manifestKeyBase). */
  readonly keyBase: string;
  /** The last WAL seq the version includes: a search's tail starts after it. */
  readonly coveredSeq: number;

  constructor(
    /** For messages: "acme/docs@3", or the store location for a bare version prefix. */
    readonly label: string,
    readonly manifest: IndexManifest,
    /** The version prefix the manifest was read from ("" or ending in "/"). */
    readonly prefix: string,
    private readonly cache: ShardCache,
    /** Where deletion bitmaps are read from (the cache's store by default). */
    private readonly store: BlobStore = cache.store,
  ) {
    this.positions = new Map(manifest.shards.map((s, i) => [s.id, i]));
    // A v2 manifest's keys are relative to the index prefix; one read from anywhere else cannot be resolved.
    this.keyBase = manifestKeyBase(manifest, prefix);
    this.coveredSeq = coveredSeqOf(manifest);
  }

  /** tenant/index@0: never built, so no manifest is read; `model` is the worker's. */
  static empty(ref: { tenant: string; index: string }, model: IndexManifest["model"], cache: ShardCache): LoadedIndex {
    const manifest: IndexManifest = {
      format: "hypencoder.index",
      version: 2,
      tenant: ref.tenant,
      index: ref.index,
      indexVersion: 0,
      createdAt: new Date(0).toISOString(),
      model,
      dtype: "float32",
      docCount: 0,
      graph: { metric: "l2", degree: 0, builder: "none", reachableFraction: 1 },
      fields: [],
      shards: [],
      coveredSeq: 0,
    };
    return new LoadedIndex(formatIndexRef({ ...ref, version: 0 }), manifest, indexPrefix(ref.tenant, ref.index) + "versions/v000000/", cache);
  }

  /** The shard's position in manifest.shards, or undefined for an id the version does not have. */
  position(shardId: string): number | undefined {
    return this.positions.get(shardId);
  }

  private entry(shardId: string): ShardEntry {
    if (this.closed) throw new Error(`index ${this.label} has been unloaded`);
    const position = this.positions.get(shardId);
    if (position === undefined) throw new RangeError(`index ${this.label} has no shard ${JSON.stringify(shardId)}`);
    return this.manifest.shards[position]!;
  }

  /** The decoded shard (views into its verified bytes), opened once and kept open. */
  shard(shardId: string): Promise<DecodedShard> {
    let entry: ShardEntry;
    try {
      entry = this.entry(shardId);
    } catch (e) {
      return Promise.reject(e);
    }
    let pending = this.opening.get(shardId);
    if (!pending) {
      pending = this.openShard(entry);
      this.opening.set(shardId, pending);
      pending.catch(() => {
        if (this.opening.get(shardId) === pending) this.opening.delete(shardId);
      });
    }
    return pending.then((handle) => handle.shard);
  }

  private async openShard(entry: ShardEntry): Promise<ShardHandle> {
    const handle = await this.cache.open({ key: this.keyBase + entry.key, bytes: entry.bytes, sha256: entry.sha256 });
    try {
      checkShardAgainstManifest(handle.shard, entry, this.manifest);
      // Opened with the shard, so no query pays for it; a section usearch refuses refuses the shard.
      await prepareProxyIndex(handle.shard);
    } catch (e) {
      handle.release();
      throw e;
    }
    if (this.closed) {
      handle.release();
      throw new Error(`index ${this.label} has been unloaded`);
    }
    this.handles.set(entry.id, handle);
    return handle;
  }

  /** The segment's stored deletion bitmap (verified against the manifest), or undefined when it has none. */
  deletionBitmap(shardId: string): Promise<DeletionBitmap | undefined> {
    let entry: ShardEntry;
    try {
      entry = this.entry(shardId);
    } catch (e) {
      return Promise.reject(e);
    }
    let pending = this.deletions.get(shardId);
    if (!pending) {
      pending = this.readDeletionBitmap(entry);
      this.deletions.set(shardId, pending);
      pending.catch(() => {
        if (this.deletions.get(shardId) === pending) this.deletions.delete(shardId);
      });
    }
    return pending;
  }

  private async readDeletionBitmap(entry: ShardEntry): Promise<DeletionBitmap | undefined> {
    const ref = entry.deletes;
    if (!ref) return undefined;
    const key = this.keyBase + ref.key;
    const bytes = await this.store.get(key);
    if (bytes.length !== ref.bytes) throw new IndexFormatError(`deletion bitmap ${key}: ${bytes.length} bytes, the manifest says ${ref.bytes}; refused`);
    if (nodeChecksums.sha256Hex(bytes) !== ref.sha256) throw new IndexFormatError(`deletion bitmap ${key}: sha256 mismatch with the manifest (corrupt object); refused`);
    const bitmap = decodeDeletionBitmap(bytes, entry.docCount, key);
    if (bitmap.count !== ref.count) throw new IndexFormatError(`deletion bitmap ${key}: ${bitmap.count} deleted rows, the manifest says ${ref.count}; refused`);
    this.deletionBytes.set(entry.id, bitmap.bits.byteLength);
    return bitmap;
  }

  /**
   * The segment's document id → row (first occurrence; builds and compactions write unique ids),
   * built on first use and kept while the version is loaded.
   */
  rowsById(shardId: string): Promise<ReadonlyMap<string, number>> {
    let pending = this.idMaps.get(shardId);
    if (!pending) {
      pending = this.shard(shardId).then((shard) => {
        const map = new Map<string, number>();
        shard.ids.forEach((id, row) => {
          if (!map.has(id)) map.set(id, row);
        });
        if (!this.closed) this.idMapBytes.set(shardId, map.size * ID_MAP_ENTRY_BYTES);
        return map;
      });
      this.idMaps.set(shardId, pending);
      pending.catch(() => {
        if (this.idMaps.get(shardId) === pending) this.idMaps.delete(shardId);
      });
    }
    return pending;
  }

  /**
   * The segment rows that are not live as `tail` sees the index: the stored deletion bitmap, plus
   * every row whose id the tail upserted or deleted. Undefined when every row is live.
   */
  deadRows(shardId: string, tail?: TailView): Promise<DeletionBitmap | undefined> {
    if (!tail || tail.touched.size === 0) return this.deletionBitmap(shardId);
    let masks = this.deadMasks.get(tail);
    if (!masks) {
      masks = new Map();
      this.deadMasks.set(tail, masks);
      this.deadMaskBytes.set(tail, 0);
      for (const old of this.deadMasks.keys()) {
        if (this.deadMasks.size <= DEAD_MASK_TAILS) break;
        this.deadMasks.delete(old);
        this.deadMaskBytes.delete(old);
      }
    }
    let pending = masks.get(shardId);
    if (!pending) {
      pending = this.buildDeadRows(shardId, tail);
      masks.set(shardId, pending);
      const forTail = masks;
      pending.then(
        (mask) => {
          if (mask && this.deadMaskBytes.has(tail)) this.deadMaskBytes.set(tail, this.deadMaskBytes.get(tail)! + mask.bits.byteLength);
        },
        () => {
          if (forTail.get(shardId) === pending) forTail.delete(shardId);
        },
      );
    }
    return pending;
  }

  private async buildDeadRows(shardId: string, tail: TailView): Promise<DeletionBitmap | undefined> {
    const [stored, rows] = await Promise.all([this.deletionBitmap(shardId), this.rowsById(shardId)]);
    const mask = stored?.copy() ?? new DeletionBitmap(this.entry(shardId).docCount);
    // Walk the smaller side: a big tail over a small segment, or a small tail over a big one.
    if (tail.touched.size <= rows.size) {
      for (const id of tail.touched) {
        const row = rows.get(id);
        if (row !== undefined) mask.add(row);
      }
    } else {
      for (const [id, row] of rows) if (tail.touched.has(id)) mask.add(row);
    }
    return mask.count > 0 ? mask : undefined;
  }

  /** Shards open in memory, and their bytes (with deletion bitmaps and dead-row masks) and documents. */
  memory(): { shards: number; bytes: number; docs: number } {
    let bytes = 0;
    let docs = 0;
    for (const h of this.handles.values()) {
      // The shard's buffers, the filter bitmaps compiled for it (filter/search-filter.ts) and its proxy index.
      bytes += h.shard.byteLength + filterBitmapBytes(h.shard) + proxyIndexBytes(h.shard);
      docs += h.shard.docCount;
    }
    for (const b of this.deletionBytes.values()) bytes += b;
    for (const b of this.idMapBytes.values()) bytes += b;
    for (const b of this.deadMaskBytes.values()) bytes += b;
    return { shards: this.handles.size, bytes, docs };
  }

  /** Releases every shard to the cache (they become evictable); later shard() calls fail. */
  close(): void {
    this.closed = true;
    for (const h of this.handles.values()) h.release();
    this.handles.clear();
    this.opening.clear();
    this.deletions.clear();
    this.deletionBytes.clear();
    this.idMaps.clear();
    this.idMapBytes.clear();
    this.deadMasks.clear();
    this.deadMaskBytes.clear();
  }
}

/** Tails whose dead-row masks a version keeps: the few newest heads being searched. */
const DEAD_MASK_TAILS = 4;
/** A V8 Map entry (hash slot, key and value references, a small integer value), roughly. */
const ID_MAP_ENTRY_BYTES = 40;

/**
 * The sha256 proves the bytes are the ones the manifest names; this proves the manifest and the
 * shard agree (a builder bug would otherwise score rows of the wrong width or mislabel documents).
 */
function checkShardAgainstManifest(shard: DecodedShard, entry: ShardEntry, manifest: IndexManifest): void {
  const problems: string[] = [];
  if (shard.docCount !== entry.docCount) problems.push(`${shard.docCount} documents, the manifest says ${entry.docCount}`);
  if (shard.dim !== manifest.model.embeddingDim) problems.push(`dim ${shard.dim}, the manifest says ${manifest.model.embeddingDim}`);
  if (shard.dtype !== manifest.dtype) problems.push(`dtype ${shard.dtype}, the manifest says ${manifest.dtype}`);
  if (problems.length > 0) throw new IndexFormatError(`shard ${entry.key}: ${problems.join("; ")}`);
}

// ─── IndexRegistry (worker lifecycle): loading, leases, supersede-unload, the memory budget ───

export interface IndexRegistryOptions {
  store: BlobStore;
  cache: ShardCache;
  /** The worker model's modelId; only indexes built with it are served. */
  modelId: string;
  /** WORKER_MEMORY_BUDGET_BYTES: idle versions (and tails, via contributors) are evicted LRU above it. */
  memoryBudgetBytes?: number;
  logger?: IndexLogger;
}

export interface PreloadResult {
  ref: IndexRef;
  /** Set when the version or one of its shards could not be loaded. */
  error?: Error;
}

/** One use of a loaded version: release() it when done (idempotent); until then it stays loaded. */
export interface IndexLease {
  readonly index: LoadedIndex;
  release(): void;
}

/** A version in the registry: loading or loaded, with its in-flight uses. */
interface Entry {
  key: string;
  /** Unset for a bare prefix (the CLI's at()), which is never superseded. */
  ref?: IndexRef;
  pending: Promise<LoadedIndex>;
  /** Set once loaded. */
  index?: LoadedIndex;
  uses: number;
  lastUsedMs: number;
  /** A newer version of its index has been acquired: unload once the last use ends. */
  superseded: boolean;
}

/**
 * Versions are loaded on first use and held while in use: acquire() → IndexLease → release().
 * When a version of an index is acquired, older versions of that index are unloaded as soon as
 * their in-flight uses end (a newer one is never unloaded for an older one: acquiring an older
 * version while a newer is loaded marks the older for unloading after its use). Above the memory
 * budget, idle versions are evicted least recently used first (memory-budget.ts), together with
 * any other registered contributor's idle entries (the WAL cache's tails).
 */
export class IndexRegistry {
  readonly store: BlobStore;
  readonly cache: ShardCache;
  readonly modelId: string;
  /** Loaded versions, shards open, and the other contributors (addMemoryContributor). */
  readonly memory: MemoryBudget;
  private readonly entries = new Map<string, Entry>();
  private readonly logger: IndexLogger | undefined;
  private counters = { supersededUnloads: 0 };

  constructor(options: IndexRegistryOptions) {
    this.store = options.store;
    this.cache = options.cache;
    this.modelId = options.modelId;
    this.logger = options.logger;
    this.memory = new MemoryBudget(options.memoryBudgetBytes ?? DEFAULT_WORKER_MEMORY_BUDGET_BYTES);
    this.memory.add("versions", {
      bytes: () => this.versionBytes(),
      evictable: () =>
        [...this.entries.values()]
          .filter((e) => e.index && e.uses === 0)
          .map((e) => ({
            lastUsedMs: e.lastUsedMs,
            bytes: e.index!.memory().bytes,
            evict: () => this.drop(e, "memory budget"),
          })),
    });
  }

  /**
   * The version `tenant/index@version`, without a lease (the CLI, tests, preload): it counts as idle,
   * so the memory budget or a newer version may unload it. Services use acquire().
   */
  get(ref: IndexRef): Promise<LoadedIndex> {
    return this.entryFor(ref).pending;
  }

  /** A version laid out directly under `prefix` of the store (the CLI's --index <dir>). */
  at(prefix = ""): Promise<LoadedIndex> {
    return this.load(prefix, prefix, `${this.store.describe()}${prefix}`).pending;
  }

  /**
   * A use of `tenant/index@version` (IndexNotFoundError when it has no manifest): the version stays
   * loaded until the lease is released. Unloads older versions of the index whose uses have ended.
   */
  async acquire(ref: IndexRef): Promise<IndexLease> {
    const entry = this.entryFor(ref);
    entry.uses++;
    let index: LoadedIndex;
    try {
      index = await entry.pending;
    } catch (e) {
      entry.uses--;
      throw e;
    }
    entry.lastUsedMs = performance.now();
    this.supersede(entry);
    // Shards open lazily during the use, so the budget is checked again when it ends.
    this.enforceMemoryBudget();
    let released = false;
    return {
      index,
      release: () => {
        if (released) return;
        released = true;
        entry.uses--;
        entry.lastUsedMs = performance.now();
        if (entry.uses === 0 && entry.superseded) this.drop(entry, "superseded");
        this.enforceMemoryBudget();
      },
    };
  }

  /** Whether the version is loaded or loading. */
  has(ref: IndexRef): boolean {
    return this.findEntry(ref) !== undefined;
  }

  /** Runs `use` with a lease on the version, released however `use` ends. */
  async withIndex<T>(ref: IndexRef, use: (index: LoadedIndex) => Promise<T>): Promise<T> {
    const lease = await this.acquire(ref);
    try {
      return await use(lease.index);
    } finally {
      lease.release();
    }
  }

  /**
   * Registers another holder of index memory (the WAL cache's tails) under a fixed name: its bytes
   * count in hypencoder_loaded_bytes and against the budget, and its idle entries are evicted with
   * the versions, LRU. Returns the removal.
   */
  addMemoryContributor(name: string, contributor: MemoryContributor): () => void {
    if (name === "versions") throw new RangeError(`"versions" is the registry's own memory contributor`);
    return this.memory.add(name, contributor);
  }

  /** Evicts idle versions and tails, LRU, while over the budget (after loads; contributors may call it after growing). */
  enforceMemoryBudget(): void {
    const { evicted, bytesFreed } = this.memory.enforce();
    if (evicted > 0) this.logger?.info({ evicted, bytesFreed, budgetBytes: this.memory.budgetBytes, bytesHeld: this.memory.bytes() }, "index memory over budget: evicted idle entries");
  }

  /** For the gauges: versions loaded, and the bytes they and the other contributors hold. */
  memoryStats(): { loadedVersions: number; loadedBytes: number; budgetBytes: number } {
    let loadedVersions = 0;
    for (const e of this.entries.values()) if (e.index) loadedVersions++;
    return { loadedVersions, loadedBytes: this.memory.bytes(), budgetBytes: this.memory.budgetBytes };
  }

  private entryFor(ref: IndexRef): Entry {
    // versionPrefix validates the ids, so no request can name a key outside its tenant. Version 0
    // (never built: the tail only) has no folder; its key base is the index prefix.
    const prefix = ref.version === 0 ? indexPrefix(ref.tenant, ref.index) : versionPrefix(ref.tenant, ref.index, ref.version);
    return this.load(ref.version === 0 ? `${prefix}@0` : prefix, prefix, formatIndexRef(ref), ref);
  }

  private load(key: string, prefix: string, label: string, ref?: IndexRef): Entry {
    let entry = this.entries.get(key);
    if (!entry) {
      const created: Entry = {
        key,
        ...(ref ? { ref: { ...ref } } : {}),
        pending: this.readManifest(prefix, label, ref).then((m) => {
          const index = new LoadedIndex(label, m, prefix, this.cache);
          created.index = index;
          return index;
        }),
        uses: 0,
        lastUsedMs: performance.now(),
        superseded: false,
      };
      entry = created;
      this.entries.set(key, created);
      created.pending.catch(() => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      });
    }
    return entry;
  }

  /** `entry` was just acquired: older loaded versions of its index go (now or after their uses). */
  private supersede(entry: Entry): void {
    const ref = entry.ref;
    if (!ref) return;
    for (const other of [...this.entries.values()]) {
      if (other === entry || !other.ref || !other.index || other.ref.tenant !== ref.tenant || other.ref.index !== ref.index) continue;
      if (other.ref.version > ref.version) {
        entry.superseded = true;
      } else {
        other.superseded = true;
        if (other.uses === 0) this.drop(other, "superseded");
      }
    }
  }

  /** Removes a loaded version and closes it (its shards stay in the disk cache until evicted there). */
  private drop(entry: Entry, reason: "superseded" | "memory budget" | "unload"): void {
    if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
    if (!entry.index) return;
    const { bytes } = entry.index.memory();
    entry.index.close();
    if (reason === "superseded") this.counters.supersededUnloads++;
    this.logger?.info({ index: entry.index.label, reason, bytes }, "index version unloaded");
  }

  private findEntry(ref: IndexRef): Entry | undefined {
    const label = formatIndexRef(ref);
    return [...this.entries.values()].find((e) => e.ref && formatIndexRef(e.ref) === label);
  }

  private versionBytes(): number {
    let bytes = 0;
    for (const e of this.entries.values()) if (e.index) bytes += e.index.memory().bytes;
    return bytes;
  }

  private async readManifest(prefix: string, label: string, ref?: IndexRef): Promise<IndexManifest> {
    const key = prefix + MANIFEST_FILE;
    let bytes: Uint8Array;
    try {
      bytes = await this.store.get(key);
    } catch (e) {
      // The store location stays out of the message: it reaches clients.
      if (e instanceof NotFoundError) throw new IndexNotFoundError(`index ${label} not found (no ${MANIFEST_FILE})`);
      throw e;
    }
    const manifest = parseIndexManifest(new TextDecoder().decode(bytes), key);
    if (ref && (manifest.tenant !== ref.tenant || manifest.index !== ref.index || manifest.indexVersion !== ref.version)) {
      throw new IndexFormatError(
        `index manifest ${key} describes ${formatIndexRef({ tenant: manifest.tenant, index: manifest.index, version: manifest.indexVersion })}, not ${label}`,
      );
    }
    if (manifest.model.id !== this.modelId) {
      throw new ModelMismatchError(
        `index ${label} was built with model ${manifest.model.id.slice(0, 12)}…, but the loaded model is ${this.modelId.slice(0, 12)}…; ` +
          "an index can only be searched with the model that embedded it (rebuild it, or load that model)",
      );
    }
    return manifest;
  }

  /** Loads each version and opens all its shards, so the first queries find them in memory. */
  async preload(refs: readonly IndexRef[]): Promise<PreloadResult[]> {
    return Promise.all(
      refs.map(async (ref): Promise<PreloadResult> => {
        try {
          await this.withIndex(ref, (index) => Promise.all(index.manifest.shards.map((s) => index.shard(s.id))));
          return { ref };
        } catch (e) {
          return { ref, error: e instanceof Error ? e : new Error(String(e)) };
        }
      }),
    );
  }

  /**
   * Unloads a version: at once when nothing uses it, else as soon as its last use ends. Returns
   * whether it was loaded or loading.
   */
  async unload(ref: IndexRef): Promise<boolean> {
    const entry = this.findEntry(ref);
    if (!entry) return false;
    await entry.pending.catch(() => undefined);
    if (entry.uses > 0) entry.superseded = true;
    else this.drop(entry, "unload");
    return true;
  }

  /** Unloads a loaded version only if nothing uses it now (a version some search still uses stays). */
  unloadIfIdle(ref: IndexRef): boolean {
    const entry = this.findEntry(ref);
    if (!entry?.index || entry.uses > 0) return false;
    this.drop(entry, "unload");
    return true;
  }

  /** Gauges for /metrics: what is loaded, what it costs in memory, and the disk cache's counters. */
  metrics(): Record<string, number> {
    let indexes = 0;
    let shards = 0;
    let bytes = 0;
    let docs = 0;
    for (const entry of this.entries.values()) {
      if (!entry.index) continue;
      indexes++;
      const m = entry.index.memory();
      shards += m.shards;
      bytes += m.bytes;
      docs += m.docs;
    }
    const c = this.cache.stats();
    return {
      indexes_loaded: indexes,
      shards_open: shards,
      shard_bytes_in_memory: bytes,
      docs_in_memory: docs,
      // The shard buffers per document: embeddings, graph, ids and stored fields.
      bytes_per_doc_in_memory: docs > 0 ? bytes / docs : 0,
      memory_budget_bytes: this.memory.budgetBytes,
      memory_bytes_held: this.memory.bytes(),
      versions_unloaded_superseded: this.counters.supersededUnloads,
      memory_evictions: this.memory.evictions,
      cache_bytes: c.bytesCached,
      cache_budget_bytes: c.bytesBudget,
      cache_files: c.files,
      cache_hits: c.hits,
      cache_misses: c.misses,
      cache_downloads: c.downloads,
      cache_download_bytes: c.downloadBytes,
      cache_evictions: c.evictions,
      cache_verify_failures: c.verifyFailures,
      cache_persist_failures: c.persistFailures,
    };
  }

  /** Releases every open shard, and lets the cache finish writing the files it has verified. */
  async close(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const entry of all) (await entry.pending.catch(() => undefined))?.close();
    await this.cache.flush();
  }
}

// ─── end of IndexRegistry ───
