/**
 * The write-ahead log between two seqs, read and folded: what search (the tail) and compaction
 * both need. Reading: every seq in (fromSeq, toSeq] is fetched (a few at a time); a missing object
 * is a gap (a sealed or burned seq), never an error. Folding: newest wins — within a batch deletes
 * apply before upserts, across batches the higher seq wins.
 */
import { IndexFormatError } from "../../../../shared/index/errors.ts";
import { walKey } from "../../../../shared/index/keys.ts";
import type { TailRange } from "../../../../shared/api/living-api.ts";
import { decodeWalBatch, type WalBatch } from "../../../../shared/index/wal.ts";
import { type BlobStore, isNotFound } from "../../store/blob-store.ts";

export interface ReadWalOptions {
  /** Objects fetched at once (default 16). */
  concurrency?: number;
  signal?: AbortSignal;
  /** Batches already at hand (a cache): seq → batch, or null for a known gap. Not fetched again. */
  known?: (seq: number) => WalBatch | null | undefined;
}

/** The batches in (fromSeq, toSeq], ascending by seq, gaps left out. */
export async function readWalRange(store: BlobStore, tenant: string, index: string, range: TailRange, options: ReadWalOptions = {}): Promise<WalBatch[]> {
  const seqs: number[] = [];
  for (let s = range.fromSeq + 1; s <= range.toSeq; s++) seqs.push(s);
  const found = new Map<number, WalBatch>();
  let next = 0;
  const worker = async () => {
    while (next < seqs.length) {
      const seq = seqs[next++]!;
      options.signal?.throwIfAborted();
      const cached = options.known?.(seq);
      if (cached !== undefined) {
        if (cached) found.set(seq, cached);
        continue;
      }
      const key = walKey(tenant, index, seq);
      try {
        const batch = decodeWalBatch(await store.get(key), key);
        if (batch.seq !== seq || batch.tenant !== tenant || batch.index !== index) {
          throw new IndexFormatError(`WAL object ${key} holds ${batch.tenant}/${batch.index} seq ${batch.seq}`);
        }
        found.set(seq, batch);
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 16, Math.max(1, seqs.length)) }, worker));
  return [...found.keys()].sort((a, b) => a - b).map((s) => found.get(s)!);
}

/** One live document of the tail: where its row is in its batch. */
export interface TailDocument {
  id: string;
  seq: number;
  batch: WalBatch;
  /** Row in batch.upsert and batch.embeddings. */
  row: number;
}

export interface FoldedTail {
  /** Live documents, by id (the newest write of each). */
  live: Map<string, TailDocument>;
  /** Every id the tail upserts or deletes: these hide any row of the same id in older segments. */
  touched: Set<string>;
  batches: number;
  /** The highest seq read (0 if none). */
  lastSeq: number;
}

/** Folds batches (ascending seq) into the tail's live documents and the ids it touches. */
export function foldTail(batches: readonly WalBatch[]): FoldedTail {
  const live = new Map<string, TailDocument>();
  const touched = new Set<string>();
  let lastSeq = 0;
  for (const batch of batches) {
    if (batch.seq <= lastSeq) throw new RangeError(`WAL batches must be folded in ascending seq order (${batch.seq} after ${lastSeq})`);
    lastSeq = batch.seq;
    for (const id of batch.delete) {
      live.delete(id);
      touched.add(id);
    }
    batch.upsert.forEach((doc, row) => {
      // Re-inserting moves the id to the end of the Map, so iteration order is write order.
      live.delete(doc.id);
      live.set(doc.id, { id: doc.id, seq: batch.seq, batch, row });
      touched.add(doc.id);
    });
  }
  return { live, touched, batches: batches.length, lastSeq };
}
