/**
 * The tail of a living index as one search sees it: the WAL batches (fromSeq, toSeq] folded
 * (wal-range.ts foldTail: newest wins), with the live documents' embeddings gathered into one
 * row-major Float32Array so the q-net scores them exhaustively like the rows of a shard, and the
 * ids the tail touches (upserted or deleted), which hide every segment row with the same id.
 *
 * Immutable once built, so concurrent searches share it (WalCache hands out one per range).
 */
import type { TailRange } from "../../../../shared/api/living-api.ts";
import { type FoldedTail, foldTail, type TailDocument } from "./wal-range.ts";
import type { WalBatch } from "../../../../shared/index/wal.ts";

/** Rough bytes of a JS Map entry or array slot beside its key and value. */
const ENTRY_OVERHEAD_BYTES = 64;

export class TailView {
  readonly fromSeq: number;
  readonly toSeq: number;
  /** Live documents in write order (row r of `embeddings`). */
  readonly ids: readonly string[];
  /** ids.length × dim, row-major float32 (the WAL's own values: no re-encoding). */
  readonly embeddings: Float32Array;
  /** Every id the tail upserts or deletes. */
  readonly touched: ReadonlySet<string>;
  /** WAL objects found in the range (gaps are not batches). */
  readonly batches: number;
  /** The highest seq found (0 when the range holds no batch). */
  readonly lastSeq: number;
  private readonly docs: readonly TailDocument[];
  private readonly rows: ReadonlyMap<string, number>;
  private readonly byteEstimate: number;

  constructor(
    range: TailRange,
    folded: FoldedTail,
    readonly dim: number,
  ) {
    this.fromSeq = range.fromSeq;
    this.toSeq = range.toSeq;
    this.docs = [...folded.live.values()];
    this.ids = this.docs.map((d) => d.id);
    this.rows = new Map(this.ids.map((id, row) => [id, row]));
    this.touched = folded.touched;
    this.batches = folded.batches;
    this.lastSeq = folded.lastSeq;
    this.embeddings = new Float32Array(this.docs.length * dim);
    this.docs.forEach((doc, row) => {
      if (doc.batch.dim !== dim) throw new RangeError(`WAL batch ${doc.seq} has dim ${doc.batch.dim}, the index ${dim}`);
      this.embeddings.set(doc.batch.embeddings.subarray(doc.row * dim, (doc.row + 1) * dim), row * dim);
    });
    // The matrix, plus the maps of ids (the batches' bytes are counted by the cache that holds them).
    let idChars = 0;
    for (const id of this.touched) idChars += id.length;
    this.byteEstimate = this.embeddings.byteLength + (this.docs.length * 2 + this.touched.size) * ENTRY_OVERHEAD_BYTES + idChars * 2;
  }

  /** Folds `batches` (ascending seq, gaps left out) as seen by a search of `range`. */
  static fromBatches(range: TailRange, batches: readonly WalBatch[], dim: number): TailView {
    return new TailView(range, foldTail(batches), dim);
  }

  get docCount(): number {
    return this.ids.length;
  }

  /** The live document's row, or undefined when the tail does not hold `id` live. */
  rowOf(id: string): number | undefined {
    return this.rows.get(id);
  }

  /** The seq that wrote row `row`. */
  seqOf(row: number): number {
    return this.docs[row]!.seq;
  }

  /** Row `row`'s fields as written (text included). Shared: callers must not change the object. */
  fields(row: number): Readonly<Record<string, unknown>> {
    const doc = this.docs[row]!;
    return doc.batch.upsert[doc.row]!.fields;
  }

  /** Whether the tail hides segment rows with this id (it upserted or deleted it). */
  hides(id: string): boolean {
    return this.touched.has(id);
  }

  /** The memory this view adds to the batches it was folded from. */
  bytes(): number {
    return this.byteEstimate;
  }
}
