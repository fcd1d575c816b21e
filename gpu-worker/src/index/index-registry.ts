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
import { IndexFormatError } from "../../../shared/index/errors.ts";
import type { DecodedShard } from "../../../shared/index/format.ts";
import { indexPrefix, MANIFEST_FILE, versionPrefix } from "../../../shared/index/keys.ts";
import { type IndexManifest, parseIndexManifest, type ShardEntry } from "../../../shared/index/manifest.ts";
import { NotFoundError, type BlobStore } from "../store/blob-store.ts";
import type { IndexLogger } from "./index-backend.ts";
import { DEFAULT_WORKER_MEMORY_BUDGET_BYTES, MemoryBudget, type MemoryContributor } from "./memory-budget.ts";
import { IndexNotFoundError, ModelMismatchError } from "./search-errors.ts";
import type { ShardCache, ShardHandle } from "./shard-cache.ts";

export interface IndexRef {
  tenant: string;
  index: string;
  version: number;
}

export function formatIndexRef(ref: IndexRef): string {
  return `${ref.tenant}/${ref.index}@${ref.version}`;
}

/** One loaded index version: its manifest and its shards, opened on demand. */
export class LoadedIndex {
  private readonly positions: Map<string, number>;
  /** Opens in flight or done; a failed open is removed so the next call retries. */
  private readonly opening = new Map<string, Promise<ShardHandle>>();
  /** Opened handles, for metrics and close(). */
  private readonly handles = new Map<string, ShardHandle>();
  private closed = false;

  constructor(
    /** For messages: "acme/docs@3", or the store location for a bare version prefix. */
    readonly label: string,
    readonly manifest: IndexManifest,
    /** The version prefix shard keys are relative to ("" or ending in "/"). */
    readonly prefix: string,
    private readonly cache: ShardCache,
  ) {
    this.positions = new Map(manifest.shards.map((s, i) => [s.id, i]));
  }

  /** The shard's position in manifest.shards, or undefined for an id the version does not have. */
  position(shardId: string): number | undefined {
    return this.positions.get(shardId);
  }

  /** The decoded shard (views into its verified bytes), opened once and kept open. */
  shard(shardId: string): Promise<DecodedShard> {
    if (this.closed) return Promise.reject(new Error(`index ${this.label} has been unloaded`));
    const position = this.positions.get(shardId);
    if (position === undefined) return Promise.reject(new RangeError(`index ${this.label} has no shard ${JSON.stringify(shardId)}`));
    let pending = this.opening.get(shardId);
    if (!pending) {
      pending = this.openShard(this.manifest.shards[position]!);
      this.opening.set(shardId, pending);
      pending.catch(() => {
        if (this.opening.get(shardId) === pending) this.opening.delete(shardId);
      });
    }
    return pending.then((handle) => handle.shard);
  }

  private async openShard(entry: ShardEntry): Promise<ShardHandle> {
    const handle = await this.cache.open({ key: this.prefix + entry.key, bytes: entry.bytes, sha256: entry.sha256 });
    try {
      checkShardAgainstManifest(handle.shard, entry, this.manifest);
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

  /** Shards open in memory, and their bytes and documents. */
  memory(): { shards: number; bytes: number; docs: number } {
    let bytes = 0;
    let docs = 0;
    for (const h of this.handles.values()) {
      bytes += h.shard.byteLength;
      docs += h.shard.docCount;
    }
    return { shards: this.handles.size, bytes, docs };
  }

  /** Releases every shard to the cache (they become evictable); later shard() calls fail. */
  close(): void {
    this.closed = true;
    for (const h of this.handles.values()) h.release();
    this.handles.clear();
    this.opening.clear();
  }
}

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

// ─── IndexRegistry (worker lifecycle, H2): loading, leases, supersede-unload, the memory budget ───

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
