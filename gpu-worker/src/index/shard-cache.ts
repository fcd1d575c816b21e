/**
 * A local disk cache of verified index shards in front of a BlobStore (S3 or a folder).
 *
 * - Files are content-addressed: `<dir>/<sha256>.hxs`. A download is hashed while it
 *   streams in and only a verified body is ever written (to a temp file, then renamed), so
 *   a file with a final name is a verified shard; a restarted cache reuses them without a
 *   download. Identical shards under different keys (an unchanged shard in a new index
 *   version) share one file.
 * - Opening decodes the bytes with decodeShard (views, no copy). Cached files are read back
 *   with the body CRC checked, which catches on-disk corruption; a bad file is deleted and
 *   downloaded again.
 * - Concurrent opens of one shard share a single download and a single decoded copy
 *   (single-flight); the shard stays pinned until every handle is released.
 * - LRU by bytes: before a download, least-recently-used files that are not pinned are
 *   evicted until the new shard fits the budget. If everything left is pinned, the cache
 *   goes over budget rather than fail a search, and shrinks again as handles are released.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { decodeShard, SHARD_FILE_EXTENSION, type DecodedShard } from "../../../shared/index/format.ts";
import type { ShardChecksums } from "../../../shared/index/checksums.ts";
import { IndexFormatError } from "../../../shared/index/errors.ts";
import type { BlobStore } from "../store/blob-store.ts";
import { nodeChecksums } from "../store/checksums.ts";

/** What a manifest says about a shard (its ShardEntry, with the key resolved against the store). */
export interface ShardRef {
  /** Store key of the shard object. */
  key: string;
  bytes: number;
  /** Lowercase hex SHA-256 of the object. */
  sha256: string;
}

/** An open shard. Call release() once done; until then its file cannot be evicted. */
export interface ShardHandle {
  readonly shard: DecodedShard;
  readonly ref: ShardRef;
  /** Idempotent. */
  release(): void;
}

export interface ShardCacheStats {
  /** Bytes of verified shard files on disk. */
  bytesCached: number;
  bytesBudget: number;
  /** Verified shard files on disk. */
  files: number;
  /** Opens served from disk or memory without waiting for a download. */
  hits: number;
  /** Opens that waited for a download (their own or a concurrent one). */
  misses: number;
  /** Objects actually fetched from the store. */
  downloads: number;
  downloadBytes: number;
  evictions: number;
  /** Downloads or cached files refused for a wrong size, sha256 or CRC. */
  verifyFailures: number;
}

export interface ShardCacheOptions {
  /** Cache folder; created if missing. Use one folder per cache (files are owned by it). */
  dir: string;
  budgetBytes: number;
  store: BlobStore;
  /** Checksums for decodeShard; defaults to node:zlib / node:crypto. */
  checksums?: ShardChecksums;
}

/** Misuse or resource problems (bad ref, shard over budget); corrupt data is an IndexFormatError. */
export class ShardCacheError extends Error {
  override name = "ShardCacheError";
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const CACHE_FILE = new RegExp(`^([0-9a-f]{64})\\${SHARD_FILE_EXTENSION}$`);
const TMP_SUFFIX = ".tmp";

interface FileEntry {
  bytes: number;
  /** Higher is more recent. */
  lastUse: number;
}

/** One shard being loaded or in use; present in `live` exactly while pinned. */
interface LiveShard {
  promise: Promise<{ shard: DecodedShard; downloaded: boolean }>;
  settled: boolean;
  refs: number;
}

export class ShardCache {
  readonly dir: string;
  readonly budgetBytes: number;
  private readonly store: BlobStore;
  private readonly checksums: ShardChecksums;
  private readonly files = new Map<string, FileEntry>();
  private readonly live = new Map<string, LiveShard>();
  /** File deletions in progress, so a re-download never races an eviction's rm. */
  private readonly deleting = new Map<string, Promise<void>>();
  private clock = 0;
  private reservedBytes = 0;
  private ready: Promise<void> | undefined;
  private counters = { hits: 0, misses: 0, downloads: 0, downloadBytes: 0, evictions: 0, verifyFailures: 0 };

  constructor(options: ShardCacheOptions) {
    if (!Number.isSafeInteger(options.budgetBytes) || options.budgetBytes <= 0) {
      throw new ShardCacheError(`shard cache budget must be a positive number of bytes, got ${options.budgetBytes}`);
    }
    this.dir = options.dir;
    this.budgetBytes = options.budgetBytes;
    this.store = options.store;
    this.checksums = options.checksums ?? nodeChecksums;
  }

  stats(): ShardCacheStats {
    let bytesCached = 0;
    for (const f of this.files.values()) bytesCached += f.bytes;
    return { bytesCached, bytesBudget: this.budgetBytes, files: this.files.size, ...this.counters };
  }

  /**
   * Scans the folder: verified files from an earlier run are adopted (oldest mtime = least
   * recently used), leftover temp files deleted. open() calls it; call it yourself to have
   * stats() reflect the folder before the first open.
   */
  init(): Promise<void> {
    this.ready ??= this.scan().catch((e: unknown) => {
      this.ready = undefined; // e.g. the folder was not writable yet: let the next open retry
      throw e;
    });
    return this.ready;
  }

  private async scan(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const found: { sha: string; bytes: number; mtimeMs: number }[] = [];
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      if (name.endsWith(TMP_SUFFIX)) {
        await rm(path, { force: true }); // an interrupted download
        continue;
      }
      const m = CACHE_FILE.exec(name);
      if (!m) continue;
      const s = await stat(path);
      if (s.isFile()) found.push({ sha: m[1], bytes: s.size, mtimeMs: s.mtimeMs });
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of found) this.files.set(f.sha, { bytes: f.bytes, lastUse: ++this.clock });
    await this.evict(0); // the budget may have shrunk since the last run
  }

  /** Opens a shard: from memory, from disk, or downloaded and verified (once, however many callers). */
  async open(ref: ShardRef): Promise<ShardHandle> {
    validateRef(ref);
    await this.init();
    const sha = ref.sha256;
    let live = this.live.get(sha);
    const wasReady = live?.settled === true;
    if (!live) {
      const entry: LiveShard = { settled: false, refs: 0, promise: this.load(ref) };
      entry.promise.then(
        () => (entry.settled = true),
        () => {
          if (this.live.get(sha) === entry) this.live.delete(sha);
        },
      );
      live = entry;
      this.live.set(sha, live);
    }
    live.refs++;
    let result: { shard: DecodedShard; downloaded: boolean };
    try {
      result = await live.promise;
    } catch (e) {
      live.refs--;
      throw e;
    }
    if (wasReady || !result.downloaded) this.counters.hits++;
    else this.counters.misses++;
    this.touch(sha);
    const pinned = live;
    let released = false;
    return {
      shard: result.shard,
      ref,
      release: () => {
        if (released) return;
        released = true;
        if (--pinned.refs === 0 && this.live.get(sha) === pinned) {
          this.live.delete(sha);
          // Pinned shards may have pushed the cache over budget; shrink now that one is free.
          // Best effort: a failed rm leaves the file counted, and the next download retries.
          void this.evict(0).catch(() => undefined);
        }
      },
    };
  }

  private path(sha: string): string {
    return join(this.dir, `${sha}${SHARD_FILE_EXTENSION}`);
  }

  private touch(sha: string): void {
    const f = this.files.get(sha);
    if (f) f.lastUse = ++this.clock;
  }

  private async load(ref: ShardRef): Promise<{ shard: DecodedShard; downloaded: boolean }> {
    const sha = ref.sha256;
    const cached = this.files.get(sha);
    if (cached) {
      const shard = await this.readCached(ref, cached);
      if (shard) return { shard, downloaded: false };
    }
    return { shard: await this.download(ref), downloaded: true };
  }

  /** The cached file decoded, or undefined (and the file removed) if it is missing or corrupt. */
  private async readCached(ref: ShardRef, entry: FileEntry): Promise<DecodedShard | undefined> {
    const path = this.path(ref.sha256);
    try {
      if (entry.bytes !== ref.bytes) {
        throw new IndexFormatError(`shard ${ref.key}: cached file is ${entry.bytes} bytes, the manifest says ${ref.bytes}`);
      }
      const bytes = await readFile(path);
      // The name proves the sha256 was verified on download; the CRC pass catches disk rot.
      const shard = decodeShard(bytes, { bytes: ref.bytes }, { label: ref.key, checksums: this.checksums });
      // mtime records recency, so a restarted cache keeps the LRU order.
      const now = new Date();
      await utimes(path, now, now).catch(() => undefined);
      return shard;
    } catch (e) {
      const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
      if (!missing && !(e instanceof IndexFormatError)) throw e;
      if (!missing) this.counters.verifyFailures++;
      await this.removeFile(ref.sha256);
      return undefined;
    }
  }

  private async download(ref: ShardRef): Promise<DecodedShard> {
    const sha = ref.sha256;
    if (ref.bytes > this.budgetBytes) {
      throw new ShardCacheError(`shard ${ref.key} is ${ref.bytes} bytes, more than the whole cache budget of ${this.budgetBytes}`);
    }
    this.reservedBytes += ref.bytes;
    try {
      await this.evict(0);
      await this.deleting.get(sha);
      const bytes = await this.fetchVerified(ref);
      // Nothing unverified ever lands on disk: write the checked bytes, then rename into place.
      const tmp = join(this.dir, `${sha}.${randomBytes(6).toString("hex")}${TMP_SUFFIX}`);
      try {
        await writeFile(tmp, bytes);
        await rename(tmp, this.path(sha));
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
      this.files.set(sha, { bytes: ref.bytes, lastUse: ++this.clock });
      try {
        return decodeShard(bytes, { bytes: ref.bytes }, { label: ref.key, checksums: this.checksums, contentVerified: true });
      } catch (e) {
        // The object matches its manifest but is not a valid shard: the writer is broken.
        // Keep nothing that could be mistaken for a usable shard.
        this.counters.verifyFailures++;
        await this.removeFile(sha);
        throw e;
      }
    } finally {
      this.reservedBytes -= ref.bytes;
    }
  }

  /** Streams the object into memory, hashing as it comes; refuses a wrong size or sha256. */
  private async fetchVerified(ref: ShardRef): Promise<Uint8Array> {
    const stream = await this.store.getStream(ref.key);
    this.counters.downloads++;
    const out = new Uint8Array(ref.bytes); // fresh and 0-aligned, as decodeShard's views need
    const hash = createHash("sha256");
    let n = 0;
    const refuse = (msg: string): never => {
      this.counters.verifyFailures++;
      stream.destroy();
      throw new IndexFormatError(`shard ${ref.key} from ${this.store.describe()}: ${msg}; refused`);
    };
    for await (const chunk of stream as AsyncIterable<Uint8Array>) {
      if (n + chunk.length > ref.bytes) refuse(`more than the ${ref.bytes} bytes the manifest says`);
      out.set(chunk, n);
      hash.update(chunk);
      n += chunk.length;
      this.counters.downloadBytes += chunk.length;
    }
    if (n !== ref.bytes) refuse(`got ${n} bytes, the manifest says ${ref.bytes} (truncated)`);
    const actual = hash.digest("hex");
    if (actual !== ref.sha256) refuse(`sha256 mismatch: the manifest says ${ref.sha256}, the object hashes to ${actual} (corrupt or replaced)`);
    return out;
  }

  /**
   * Evicts least-recently-used unpinned files until the files plus in-flight downloads plus
   * `incoming` fit the budget, or only pinned files are left.
   */
  private async evict(incoming: number): Promise<void> {
    // Recomputed each round: a concurrent eviction or download may have changed the files.
    const total = (): number => {
      let t = this.reservedBytes + incoming;
      for (const f of this.files.values()) t += f.bytes;
      return t;
    };
    while (total() > this.budgetBytes) {
      let victim: string | undefined;
      let oldest = Infinity;
      for (const [sha, f] of this.files) {
        if (!this.live.has(sha) && f.lastUse < oldest) {
          oldest = f.lastUse;
          victim = sha;
        }
      }
      if (victim === undefined) return;
      this.counters.evictions++;
      await this.removeFile(victim);
    }
  }

  private async removeFile(sha: string): Promise<void> {
    this.files.delete(sha); // synchronously, so no open picks it up from here on
    const done = rm(this.path(sha), { force: true }).finally(() => {
      if (this.deleting.get(sha) === done) this.deleting.delete(sha);
    });
    this.deleting.set(sha, done);
    await done;
  }
}

function validateRef(ref: ShardRef): void {
  if (!ref || typeof ref.key !== "string" || ref.key.length === 0) throw new ShardCacheError("shard ref needs a key");
  if (!SHA256_HEX.test(ref.sha256)) throw new ShardCacheError(`shard ${ref.key}: sha256 must be 64 lowercase hex digits, got ${JSON.stringify(ref.sha256)}`);
  if (!Number.isSafeInteger(ref.bytes) || ref.bytes <= 0) throw new ShardCacheError(`shard ${ref.key}: bytes must be a positive integer, got ${ref.bytes}`);
}
