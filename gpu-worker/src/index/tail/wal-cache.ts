/**
 * The worker's cache of decoded WAL batches, per (tenant, index), keyed by seq, with the gaps it
 * has seen (a missing object at or below a committed head is a sealed or burned seq and stays
 * missing). A search for tail (coveredSeq, head] fetches only the seqs the cache does not know yet
 * (readWalRange's `known`), so a stream of searches behind a stream of writes reads each WAL
 * object once.
 *
 * Bytes are accounted (batches: embeddings, ids and fields; views: their gathered matrix) for the
 * memory gauges, and bounded: over `budgetBytes` the least recently used indexes' tails are
 * dropped (a search holding a view keeps it; the next search refetches). Batches at or below every
 * coveredSeq searched in the last minute are dropped too: a compaction has folded them into a
 * segment, so only a search of the previous version could still want them.
 *
 * Every batch is checked against the worker's model: embeddings from another model mean nothing
 * to its q-nets (ModelMismatchError, as for a version's manifest).
 */
import type { TailRange } from "../../../../shared/api/living-api.ts";
import { IndexFormatError } from "../../../../shared/index/errors.ts";
import type { WalBatch } from "../../../../shared/index/wal.ts";
import { type BlobStore, isNotFound } from "../../store/blob-store.ts";
import { StorageUnavailableError } from "../living/errors.ts";
import { ModelMismatchError } from "../search-errors.ts";
import { TailView } from "./tail-view.ts";
import { readWalRange } from "./wal-range.ts";

export const WAL_CACHE_DEFAULTS = {
  /** 1 GiB: ~300k documents of a 768-d model with short fields. */
  budgetBytes: 2 ** 30,
  /**
   * Views (tail ranges) kept per index: the newest heads being searched. Each holds its own matrix
   * (a 10,000-document tail of a 768-d model is 30 MiB), so few; a search in flight keeps its own.
   */
  viewsPerIndex: 2,
  /** How long a searched coveredSeq keeps the batches at or below it (a flip's stragglers). */
  floorGraceMs: 60_000,
} as const;

export interface WalCacheOptions {
  store: BlobStore;
  /** The worker model's modelId and embedding width: batches of any other model are refused. */
  modelId: string;
  dim: number;
  budgetBytes?: number;
  /** WAL objects fetched at once per range read. */
  concurrency?: number;
  now?: () => number;
}

/** What one index's tail costs and holds, for metrics. */
export interface WalCacheStats {
  indexes: number;
  batches: number;
  gaps: number;
  bytes: number;
  fetchedBatches: number;
  evictions: number;
}

class IndexTail {
  /** seq → batch, or null for a known gap. */
  readonly batches = new Map<number, WalBatch | null>();
  batchBytes = 0;
  /** `${fromSeq}:${toSeq}` → the view being built or built, oldest first. */
  readonly views = new Map<string, { pending: Promise<TailView>; bytes: number }>();
  /** coveredSeqs searched recently → when last. */
  readonly floors = new Map<number, number>();

  bytes(): number {
    let bytes = this.batchBytes;
    for (const v of this.views.values()) bytes += v.bytes;
    return bytes;
  }
}

export class WalCache {
  readonly budgetBytes: number;
  private readonly store: BlobStore;
  private readonly modelId: string;
  private readonly dim: number;
  private readonly concurrency: number | undefined;
  private readonly now: () => number;
  /** Least recently used first (re-inserted on use). */
  private readonly tails = new Map<string, IndexTail>();
  private counters = { fetchedBatches: 0, evictions: 0 };

  constructor(options: WalCacheOptions) {
    this.store = options.store;
    this.modelId = options.modelId;
    this.dim = options.dim;
    this.budgetBytes = options.budgetBytes ?? WAL_CACHE_DEFAULTS.budgetBytes;
    this.concurrency = options.concurrency;
    this.now = options.now ?? Date.now;
  }

  /**
   * The tail (range.fromSeq, range.toSeq] of tenant/index, folded. fromSeq must be the searched
   * version's coveredSeq. Concurrent calls for one range share one read.
   */
  view(tenant: string, index: string, range: TailRange): Promise<TailView> {
    if (range.toSeq < range.fromSeq) throw new RangeError(`tail range (${range.fromSeq}, ${range.toSeq}] is backwards`);
    const key = `${tenant}/${index}`;
    let tail = this.tails.get(key);
    if (tail) this.tails.delete(key);
    else tail = new IndexTail();
    this.tails.set(key, tail);
    this.raiseFloor(tail, range.fromSeq);

    const viewKey = `${range.fromSeq}:${range.toSeq}`;
    const existing = tail.views.get(viewKey);
    if (existing) {
      // Most recently used last, so the oldest view is the one dropped.
      tail.views.delete(viewKey);
      tail.views.set(viewKey, existing);
      return existing.pending;
    }
    const entry = { pending: this.build(tail, tenant, index, range), bytes: 0 };
    tail.views.set(viewKey, entry);
    while (tail.views.size > WAL_CACHE_DEFAULTS.viewsPerIndex) tail.views.delete(tail.views.keys().next().value!);
    entry.pending.then(
      (view) => {
        entry.bytes = view.bytes();
        this.evict(key);
      },
      () => {
        if (tail.views.get(viewKey) === entry) tail.views.delete(viewKey);
      },
    );
    return entry.pending;
  }

  /**
   * The batches this cache already holds for tenant/index, as readWalRange's `known` lookup: a batch,
   * null for a known gap, undefined for a seq to fetch. Compaction on the index's owner reads its
   * tail through it instead of downloading again what searches already read.
   */
  known(tenant: string, index: string): (seq: number) => WalBatch | null | undefined {
    const tail = this.tails.get(`${tenant}/${index}`);
    return (seq) => tail?.batches.get(seq);
  }

  private async build(tail: IndexTail, tenant: string, index: string, range: TailRange): Promise<TailView> {
    const fetched: WalBatch[] = [];
    let batches: WalBatch[];
    try {
      batches = await readWalRange(this.store, tenant, index, range, {
        ...(this.concurrency ? { concurrency: this.concurrency } : {}),
        known: (seq) => tail.batches.get(seq),
      });
    } catch (e) {
      if (e instanceof IndexFormatError || isNotFound(e)) throw e;
      // The WAL object names are plain keys, but the client learns only that storage failed.
      throw new StorageUnavailableError(`the write-ahead log of ${tenant}/${index} could not be read; retry shortly`, e);
    }
    const found = new Set<number>();
    for (const batch of batches) {
      found.add(batch.seq);
      if (tail.batches.has(batch.seq)) continue;
      this.checkModel(batch, tenant, index);
      fetched.push(batch);
    }
    const floor = this.floorOf(tail);
    for (const batch of fetched) {
      if (batch.seq <= floor) continue;
      tail.batches.set(batch.seq, batch);
      tail.batchBytes += batchBytes(batch);
    }
    this.counters.fetchedBatches += fetched.length;
    for (let seq = Math.max(range.fromSeq, floor) + 1; seq <= range.toSeq; seq++) {
      if (!found.has(seq) && !tail.batches.has(seq)) tail.batches.set(seq, null);
    }
    return TailView.fromBatches(range, batches, this.dim);
  }

  private checkModel(batch: WalBatch, tenant: string, index: string): void {
    if (batch.modelId !== this.modelId || batch.dim !== this.dim) {
      throw new ModelMismatchError(
        `write batch ${batch.seq} of index ${tenant}/${index} was embedded by model ${batch.modelId.slice(0, 12)}… (dim ${batch.dim}), ` +
          `but the loaded model is ${this.modelId.slice(0, 12)}… (dim ${this.dim}); the tail can only be searched with the model that embedded it`,
      );
    }
  }

  /** Records a searched coveredSeq; batches at or below every recent one are dropped. */
  private raiseFloor(tail: IndexTail, fromSeq: number): void {
    const now = this.now();
    tail.floors.set(fromSeq, now);
    for (const [seq, at] of tail.floors) if (now - at > WAL_CACHE_DEFAULTS.floorGraceMs && seq !== fromSeq) tail.floors.delete(seq);
    const floor = this.floorOf(tail);
    for (const [seq, batch] of tail.batches) {
      if (seq > floor) continue;
      tail.batches.delete(seq);
      if (batch) tail.batchBytes -= batchBytes(batch);
    }
    for (const key of [...tail.views.keys()]) if (Number(key.split(":")[0]) < floor) tail.views.delete(key);
  }

  private floorOf(tail: IndexTail): number {
    return Math.min(...tail.floors.keys());
  }

  /** Over budget: drop least recently used indexes' tails, never the one just used. */
  private evict(keep: string): void {
    let total = this.bytes();
    for (const [key, tail] of this.tails) {
      if (total <= this.budgetBytes) break;
      if (key === keep) continue;
      total -= tail.bytes();
      this.tails.delete(key);
      this.counters.evictions++;
    }
  }

  /** Forgets an index's tail (the index was deleted, or its versions unloaded). */
  forget(tenant: string, index: string): void {
    this.tails.delete(`${tenant}/${index}`);
  }

  /** Bytes held: batches and views of every index (hypencoder_loaded_bytes counts them). */
  bytes(): number {
    let bytes = 0;
    for (const tail of this.tails.values()) bytes += tail.bytes();
    return bytes;
  }

  stats(): WalCacheStats {
    let batches = 0;
    let gaps = 0;
    for (const tail of this.tails.values()) {
      for (const b of tail.batches.values()) {
        if (b) batches++;
        else gaps++;
      }
    }
    return { indexes: this.tails.size, batches, gaps, bytes: this.bytes(), ...this.counters };
  }
}

/** Embeddings exactly; ids and fields as their JSON size in UTF-16 (an estimate of the JS heap). */
function batchBytes(batch: WalBatch): number {
  let chars = 0;
  for (const doc of batch.upsert) chars += doc.id.length + JSON.stringify(doc.fields).length;
  for (const id of batch.delete) chars += id.length;
  return batch.embeddings.byteLength + chars * 2 + (batch.upsert.length + batch.delete.length) * 64;
}
