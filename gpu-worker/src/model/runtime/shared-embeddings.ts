/**
 * A shard's embeddings in shared memory (a SharedArrayBuffer), so the inference thread can gather
 * the rows a search scores itself: each runtime posts the view to its thread once per loaded shard,
 * and a scoring call sends only row ids. Without this, every call gathered rows into a fresh array
 * on the main thread and moved it across (tens of MB per exhaustive pass, on the event loop).
 *
 * Lifecycle: whoever owns the shard's bytes (the ShardCache, for every searched segment) calls
 * shareEmbeddings() once when the shard is decoded and closeSharedEmbeddings() when the decoded
 * copy goes (released by its last user, or evicted); closing tells every runtime that registered
 * it to drop the thread's reference. Only arrays shared this way are scored by row id; any other
 * array (a living index's tail, test fixtures) keeps the gather path (index/onnx-row-scorer.ts).
 */

export class SharedEmbeddings {
  private static nextId = 1;
  /** Unique per shared array in this process: the thread's key for it. */
  readonly id = SharedEmbeddings.nextId++;
  readonly rowCount: number;
  private closeListeners: (() => void)[] = [];
  private isClosed = false;

  constructor(
    /** Row-major float32 or float16 bits, over a SharedArrayBuffer. */
    readonly data: Float32Array | Uint16Array,
    readonly dim: number,
  ) {
    if (!(data.buffer instanceof SharedArrayBuffer)) throw new TypeError("SharedEmbeddings: the array must be a view of a SharedArrayBuffer");
    if (!Number.isInteger(dim) || dim < 1 || data.length % dim !== 0) {
      throw new RangeError(`SharedEmbeddings: ${data.length} values is not a whole number of ${dim}-wide rows`);
    }
    this.rowCount = data.length / dim;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Runs `listener` once when the embeddings are closed (at once if they already are). */
  onClose(listener: () => void): void {
    if (this.isClosed) listener();
    else this.closeListeners.push(listener);
  }

  /** Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const listeners = this.closeListeners;
    this.closeListeners = [];
    for (const listener of listeners) listener();
  }
}

const shared = new WeakMap<object, SharedEmbeddings>();

/**
 * Marks `embeddings` (a view of a SharedArrayBuffer) as scorable by row id, until
 * closeSharedEmbeddings(embeddings). Returns the existing registration if there is one.
 */
export function shareEmbeddings(embeddings: Float32Array | Uint16Array, dim: number): SharedEmbeddings {
  let entry = shared.get(embeddings);
  if (!entry || entry.closed) {
    entry = new SharedEmbeddings(embeddings, dim);
    shared.set(embeddings, entry);
  }
  return entry;
}

/** The open registration of `embeddings`, if its owner shared it. */
export function sharedEmbeddingsOf(embeddings: Float32Array | Uint16Array): SharedEmbeddings | undefined {
  const entry = shared.get(embeddings);
  return entry && !entry.closed ? entry : undefined;
}

/** Ends the registration: every runtime that posted it to its thread releases it there. */
export function closeSharedEmbeddings(embeddings: Float32Array | Uint16Array): void {
  const entry = shared.get(embeddings);
  if (!entry) return;
  shared.delete(embeddings);
  entry.close();
}

/** Zeroed bytes in shared memory, for data that will be shared with the inference thread. */
export function sharedBytes(length: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(length));
}
