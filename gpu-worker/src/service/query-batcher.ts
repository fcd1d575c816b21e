/**
 * Dynamic batching of query encoding (as in text-embeddings-inference): concurrent `encode` calls are
 * collected and run as one `encodeQueries` call, which costs little more than a single query on a GPU.
 *
 * A batch is sent when it is full (`batchMax`), or when its oldest query has waited `waitMs`, and
 * only while fewer than `maxRunning` encoder calls are in flight: while the encoder is busy, the
 * next batch keeps filling, so batches grow with load instead of queueing single queries behind
 * each other. Queries with different token limits cannot share a batch (the limit is per call), so
 * each limit has its own line.
 *
 * The encoder returns one prepared q-net per query, held by the inference thread until released
 * (runtime.ts PreparedQNet). A caller owns its q-net once `encode` resolves; a q-net nobody will
 * use (its caller aborted while the batch ran) is released here, so none is ever left behind.
 */
import type { PreparedQNet } from "../model/runtime/runtime.ts";

/** Anything held elsewhere until released. */
export interface Releasable {
  release(): Promise<void>;
}

export interface QueryEncoder<Q extends Releasable = PreparedQNet> {
  prepareQueries(texts: readonly string[], options: { maxLength?: number; batchSize?: number }): Promise<Q[]>;
}

export interface QueryBatcherOptions {
  batchMax: number;
  waitMs: number;
  /** Encoder calls in flight at once; default 1 (one inference thread runs one graph at a time). */
  maxRunning?: number;
  /** Called after each encoder call with its size and duration. */
  onBatch?: (size: number, ms: number) => void;
}

interface Pending<Q> {
  text: string;
  enqueuedAt: number;
  settled: boolean;
  resolve(qnet: Q): void;
  reject(reason: unknown): void;
}

interface Line<Q> {
  maxLength: number | undefined;
  items: Pending<Q>[];
  timer?: ReturnType<typeof setTimeout>;
}

export class QueryBatcher<Q extends Releasable = PreparedQNet> {
  private readonly lines = new Map<string, Line<Q>>();
  private running = 0;
  private readonly maxRunning: number;

  constructor(
    private readonly encoder: QueryEncoder<Q>,
    private readonly options: QueryBatcherOptions,
  ) {
    if (!(options.batchMax >= 1)) throw new RangeError(`batchMax must be at least 1, got ${options.batchMax}`);
    this.maxRunning = options.maxRunning ?? 1;
  }

  /** Queries waiting for an encoder call. */
  get pending(): number {
    let n = 0;
    for (const line of this.lines.values()) n += line.items.length;
    return n;
  }

  /**
   * The q-net for one query; the caller must release it. If `signal` fires first, the promise
   * rejects with its reason at once (and the q-net, if the batch was already running, is released
   * when it arrives).
   */
  encode(text: string, maxLength?: number, signal?: AbortSignal): Promise<Q> {
    signal?.throwIfAborted();
    const key = String(maxLength ?? "default");
    let line = this.lines.get(key);
    if (!line) {
      line = { maxLength, items: [] };
      this.lines.set(key, line);
    }
    const target = line;
    return new Promise<Q>((resolve, reject) => {
      const onAbort = () => {
        if (item.settled) return;
        item.settled = true;
        // Still waiting: leave the line. Already running: its q-net is released when it arrives.
        const at = target.items.indexOf(item);
        if (at >= 0) target.items.splice(at, 1);
        reject(signal!.reason);
      };
      const item: Pending<Q> = {
        text,
        enqueuedAt: performance.now(),
        settled: false,
        resolve: (qnet) => {
          if (item.settled) {
            void qnet.release();
            return;
          }
          item.settled = true;
          signal?.removeEventListener("abort", onAbort);
          resolve(qnet);
        },
        reject: (reason) => {
          if (item.settled) return;
          item.settled = true;
          signal?.removeEventListener("abort", onAbort);
          reject(reason);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      target.items.push(item);
      this.dispatch();
    });
  }

  /** Starts every batch that is ready, while encoder slots are free; arms timers for the rest. */
  private dispatch(): void {
    const now = performance.now();
    for (const [key, line] of this.lines) {
      if (line.items.length === 0) {
        if (line.timer) clearTimeout(line.timer);
        this.lines.delete(key);
        continue;
      }
      const waited = now - line.items[0]!.enqueuedAt;
      const ready = line.items.length >= this.options.batchMax || waited >= this.options.waitMs;
      if (ready && this.running < this.maxRunning) {
        if (line.timer) clearTimeout(line.timer);
        line.timer = undefined;
        void this.run(line.maxLength, line.items.splice(0, this.options.batchMax));
        if (line.items.length > 0) this.arm(line, 0);
      } else if (!ready) {
        this.arm(line, this.options.waitMs - waited);
      }
      // Ready but the encoder is busy: the finishing call dispatches again.
    }
  }

  private arm(line: Line<Q>, ms: number): void {
    if (line.timer) return;
    line.timer = setTimeout(() => {
      line.timer = undefined;
      this.dispatch();
    }, Math.max(0, ms));
  }

  private async run(maxLength: number | undefined, batch: Pending<Q>[]): Promise<void> {
    this.running++;
    const started = performance.now();
    try {
      const qnets = await this.encoder.prepareQueries(
        batch.map((p) => p.text),
        { maxLength, batchSize: batch.length },
      );
      if (qnets.length !== batch.length) {
        await Promise.all(qnets.map((q) => q.release()));
        throw new Error(`query encoder returned ${qnets.length} q-nets for ${batch.length} queries`);
      }
      batch.forEach((p, i) => p.resolve(qnets[i]!));
    } catch (error) {
      for (const p of batch) p.reject(error);
    } finally {
      this.running--;
      this.options.onBatch?.(batch.length, performance.now() - started);
      this.dispatch();
    }
  }
}
