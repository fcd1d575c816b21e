/**
 * A local disk cache of verified index shards in front of a BlobStore (S3 or a folder).
 *
 * - Files are content-addressed: `<dir>/<sha256>.hxs`. A download is one streaming pass:
 *   each chunk is copied into a buffer preallocated from the manifest's size and hashed as
 *   it arrives. Once the size and sha256 match and the shard decodes, the shard is served
 *   from that buffer at once, and the file is written behind it (to a temp name, renamed when
 *   complete), so a file with a final name is a verified shard and a refused download never
 *   touches the folder. Writing behind rather than during the download matters on a loaded
 *   machine: file writes racing the socket cost the download about a third of its throughput
 *   (bench/shard-load.bench.ts). Temp files left by a crash are deleted on the next start; a
 *   restarted cache reuses final-named files without a download. Identical shards under
 *   different keys (an unchanged shard in a new index version) share one file. flush() waits
 *   for the writes in progress.
 * - Shard bytes live in shared memory (a SharedArrayBuffer), and each decoded shard's embeddings
 *   are shared with the inference thread (model/runtime/shared-embeddings.ts) until the decoded
 *   copy is dropped (its last handle released), so scoring sends row ids, never rows.
 * - Opening decodes the bytes with decodeShard (views, no copy). A download is decoded
 *   with `contentVerified` (the sha256 already covers the body, so no CRC pass); cached
 *   files are read back with the body CRC checked, which catches on-disk corruption; a bad
 *   file is deleted and downloaded again.
 * - Concurrent opens of one shard share a single download and a single decoded copy
 *   (single-flight); the shard stays pinned until every handle is released.
 * - LRU by bytes: before a download, least-recently-used files that are not pinned are
 *   evicted until the new shard fits the budget. If everything left is pinned, the cache
 *   goes over budget rather than fail a search, and shrinks again as handles are released.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { decodeShard, SHARD_FILE_EXTENSION, type DecodedShard } from "../../../shared/index/format.ts";
import type { ShardChecksums } from "../../../shared/index/checksums.ts";
import { IndexFormatError } from "../../../shared/index/errors.ts";
import type { BlobStore } from "../store/blob-store.ts";
import { nodeChecksums } from "../store/checksums.ts";
import { closeSharedEmbeddings, shareEmbeddings, sharedBytes } from "../model/runtime/shared-embeddings.ts";
import { closeProxyIndex } from "./proxy-index-reader.ts";

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
  /** Verified downloads whose file could not be written (the shard was still served). */
  persistFailures: number;
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
  /** The index store shards are fetched from (LoadedIndex reads deletion bitmaps from it too). */
  readonly store: BlobStore;
  private readonly checksums: ShardChecksums;
  private readonly files = new Map<string, FileEntry>();
  private readonly live = new Map<string, LiveShard>();
  /** File deletions in progress, so a re-download never races an eviction's rm. */
  private readonly deleting = new Map<string, Promise<void>>();
  /** Verified shards whose file is being written behind the download. */
  private readonly persisting = new Map<string, Promise<void>>();
  private clock = 0;
  private reservedBytes = 0;
  private ready: Promise<void> | undefined;
  private counters = { hits: 0, misses: 0, downloads: 0, downloadBytes: 0, evictions: 0, verifyFailures: 0, persistFailures: 0 };

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
    const { shard } = result;
    let released = false;
    return {
      shard,
      ref,
      release: () => {
        if (released) return;
        released = true;
        if (--pinned.refs === 0 && this.live.get(sha) === pinned) {
          this.live.delete(sha);
          // This decoded copy is done: the inference thread lets go of its embeddings, and its
          // proxy index (native memory) is freed.
          closeSharedEmbeddings(shard.embeddings);
          closeProxyIndex(shard);
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
    const loaded = await this.decodeOrDownload(ref);
    shareEmbeddings(loaded.shard.embeddings, loaded.shard.dim);
    return loaded;
  }

  private async decodeOrDownload(ref: ShardRef): Promise<{ shard: DecodedShard; downloaded: boolean }> {
    const sha = ref.sha256;
    await this.persisting.get(sha); // released before its file was written: read the file, not S3
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
      const bytes = await readShared(path, ref);
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
    if (ref.bytes > this.budgetBytes) {
      throw new ShardCacheError(`shard ${ref.key} is ${ref.bytes} bytes, more than the whole cache budget of ${this.budgetBytes}`);
    }
    this.reservedBytes += ref.bytes;
    let reservationHandedOn = false;
    try {
      await this.evict(0);
      const stream = await this.store.getStream(ref.key);
      // Fresh and 0-aligned, as decodeShard's views need; shared, so the inference thread reads the embeddings in place.
      const bytes = sharedBytes(ref.bytes);
      this.counters.downloads++;
      await this.receiveVerified(ref, stream, bytes);
      let shard: DecodedShard;
      try {
        // The sha256 matched, so skip the body CRC pass.
        shard = decodeShard(bytes, { bytes: ref.bytes }, { label: ref.key, checksums: this.checksums, contentVerified: true });
      } catch (e) {
        // The object matches its manifest but is not a valid shard: the writer is broken.
        this.counters.verifyFailures++;
        throw e;
      }
      this.persist(ref, bytes);
      reservationHandedOn = true;
      return shard;
    } finally {
      if (!reservationHandedOn) this.reservedBytes -= ref.bytes;
    }
  }

  /**
   * Writes a verified shard's file in the background: a temp name, renamed once complete. Its
   * bytes stay reserved against the budget until then. A failed write costs only the reuse
   * (the shard is already being served); it is counted, and the temp file removed.
   */
  private persist(ref: ShardRef, bytes: Uint8Array): void {
    const sha = ref.sha256;
    const tmp = join(this.dir, `${sha}.${randomBytes(6).toString("hex")}${TMP_SUFFIX}`);
    const done = (async () => {
      try {
        await this.deleting.get(sha);
        await writeFile(tmp, bytes);
        await rename(tmp, this.path(sha));
        this.files.set(sha, { bytes: ref.bytes, lastUse: ++this.clock });
      } catch {
        this.counters.persistFailures++;
        await rm(tmp, { force: true }).catch(() => undefined);
      } finally {
        this.reservedBytes -= ref.bytes;
        this.persisting.delete(sha);
      }
    })();
    this.persisting.set(sha, done);
  }

  /** Resolves once every verified download so far has its file on disk (or has failed to). */
  async flush(): Promise<void> {
    while (this.persisting.size > 0) await Promise.all(this.persisting.values());
  }

  /**
   * Streams the object into `out` (preallocated from the manifest's size, no concat),
   * hashing each chunk as it comes; refuses a wrong size or sha256.
   */
  private async receiveVerified(ref: ShardRef, stream: Readable, out: Uint8Array): Promise<void> {
    const hash = createHash("sha256");
    let n = 0;
    const refuse = (msg: string): never => {
      this.counters.verifyFailures++;
      throw new IndexFormatError(`shard ${ref.key} from ${this.store.describe()}: ${msg}; refused`);
    };
    // Leaving the loop early (a refusal, a stream error) destroys the stream.
    for await (const chunk of stream as AsyncIterable<Uint8Array | string>) {
      if (typeof chunk === "string") refuse("the store returned text, not bytes");
      const c = chunk as Uint8Array;
      if (n + c.length > ref.bytes) refuse(`more than the ${ref.bytes} bytes the manifest says`);
      out.set(c, n);
      hash.update(c);
      n += c.length;
      this.counters.downloadBytes += c.length;
    }
    if (n !== ref.bytes) refuse(`got ${n} bytes, the manifest says ${ref.bytes} (truncated)`);
    const actual = hash.digest("hex");
    if (actual !== ref.sha256) refuse(`sha256 mismatch: the manifest says ${ref.sha256}, the object hashes to ${actual} (corrupt or replaced)`);
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

/** A cached file read into shared memory (see the header); a file of the wrong size is refused. */
async function readShared(path: string, ref: ShardRef): Promise<Uint8Array> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    if (size !== ref.bytes) throw new IndexFormatError(`shard ${ref.key}: cached file is ${size} bytes, the manifest says ${ref.bytes}`);
    const bytes = sharedBytes(ref.bytes);
    for (let done = 0; done < ref.bytes; ) {
      const { bytesRead } = await file.read(bytes, done, ref.bytes - done, done);
      if (bytesRead === 0) throw new IndexFormatError(`shard ${ref.key}: cached file ended after ${done} of ${ref.bytes} bytes`);
      done += bytesRead;
    }
    return bytes;
  } finally {
    await file.close();
  }
}

function validateRef(ref: ShardRef): void {
  if (!ref || typeof ref.key !== "string" || ref.key.length === 0) throw new ShardCacheError("shard ref needs a key");
  if (!SHA256_HEX.test(ref.sha256)) throw new ShardCacheError(`shard ${ref.key}: sha256 must be 64 lowercase hex digits, got ${JSON.stringify(ref.sha256)}`);
  if (!Number.isSafeInteger(ref.bytes) || ref.bytes <= 0) throw new ShardCacheError(`shard ${ref.key}: bytes must be a positive integer, got ${ref.bytes}`);
}
