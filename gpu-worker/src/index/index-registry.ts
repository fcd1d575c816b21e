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
import { MANIFEST_FILE, versionPrefix } from "../../../shared/index/keys.ts";
import { type IndexManifest, parseIndexManifest, type ShardEntry } from "../../../shared/index/manifest.ts";
import { NotFoundError, type BlobStore } from "../store/blob-store.ts";
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

export interface IndexRegistryOptions {
  store: BlobStore;
  cache: ShardCache;
  /** The worker model's modelId; only indexes built with it are served. */
  modelId: string;
}

export interface PreloadResult {
  ref: IndexRef;
  /** Set when the version or one of its shards could not be loaded. */
  error?: Error;
}

export class IndexRegistry {
  readonly store: BlobStore;
  readonly cache: ShardCache;
  readonly modelId: string;
  private readonly loaded = new Map<string, Promise<LoadedIndex>>();
  /** The versions in `loaded` whose manifest has been read: metrics() must be synchronous. */
  private readonly ready = new Set<LoadedIndex>();

  constructor(options: IndexRegistryOptions) {
    this.store = options.store;
    this.cache = options.cache;
    this.modelId = options.modelId;
  }

  /** The version `tenant/index@version`; IndexNotFoundError when it has no manifest. */
  get(ref: IndexRef): Promise<LoadedIndex> {
    // versionPrefix validates the ids, so no request can name a key outside its tenant.
    return this.load(versionPrefix(ref.tenant, ref.index, ref.version), formatIndexRef(ref), ref);
  }

  /** A version laid out directly under `prefix` of the store (the CLI's --index <dir>). */
  at(prefix = ""): Promise<LoadedIndex> {
    return this.load(prefix, `${this.store.describe()}${prefix}`);
  }

  private load(prefix: string, label: string, ref?: IndexRef): Promise<LoadedIndex> {
    let pending = this.loaded.get(prefix);
    if (!pending) {
      pending = this.readManifest(prefix, label, ref).then((m) => {
        const index = new LoadedIndex(label, m, prefix, this.cache);
        this.ready.add(index);
        return index;
      });
      this.loaded.set(prefix, pending);
      pending.catch(() => {
        if (this.loaded.get(prefix) === pending) this.loaded.delete(prefix);
      });
    }
    return pending;
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
          const index = await this.get(ref);
          await Promise.all(index.manifest.shards.map((s) => index.shard(s.id)));
          return { ref };
        } catch (e) {
          return { ref, error: e instanceof Error ? e : new Error(String(e)) };
        }
      }),
    );
  }

  /** Drops a version from memory (its shards stay in the disk cache until evicted). */
  async unload(ref: IndexRef): Promise<boolean> {
    const prefix = versionPrefix(ref.tenant, ref.index, ref.version);
    const pending = this.loaded.get(prefix);
    if (!pending) return false;
    this.loaded.delete(prefix);
    const index = await pending.catch(() => undefined);
    if (index) {
      this.ready.delete(index);
      index.close();
    }
    return true;
  }

  /** Gauges for /metrics: what is loaded, what it costs in memory, and the disk cache's counters. */
  metrics(): Record<string, number> {
    let indexes = 0;
    let shards = 0;
    let bytes = 0;
    let docs = 0;
    for (const index of this.ready) {
      indexes++;
      const m = index.memory();
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
    const all = [...this.loaded.values()];
    this.loaded.clear();
    for (const pending of all) (await pending.catch(() => undefined))?.close();
    this.ready.clear();
    await this.cache.flush();
  }
}
