/**
 * The worker's memory for loaded index data (WORKER_MEMORY_BUDGET_BYTES): what loaded versions
 * (shards, deletion masks) and tails (the WAL cache) hold, summed over contributors, and LRU
 * eviction of what is idle when the sum is over the budget. Contributors register themselves (the
 * IndexRegistry for versions; the WAL cache for tails) with their bytes and, optionally, the
 * entries they could drop now. Entries in use are never offered, so the sum may stay over the
 * budget while they are (a search is never failed for memory); it comes down as they are released.
 */
import { totalmem } from "node:os";

/** Half of the machine's memory: the rest is the model runtime's, the process's and the OS's. */
export const DEFAULT_WORKER_MEMORY_BUDGET_BYTES = Math.floor(totalmem() / 2);

/** Something a contributor could drop now (idle), with when it was last used. */
export interface EvictionCandidate {
  lastUsedMs: number;
  bytes: number;
  evict(): void;
}

export interface MemoryContributor {
  /** Bytes held now. */
  bytes(): number;
  /** Entries not in use, which eviction may drop. */
  evictable?(): EvictionCandidate[];
}

export interface EnforceResult {
  evicted: number;
  bytesFreed: number;
}

export class MemoryBudget {
  private readonly contributors = new Map<string, MemoryContributor>();
  private evictedTotal = 0;

  constructor(readonly budgetBytes: number) {
    if (!(budgetBytes > 0)) throw new RangeError(`a memory budget must be a positive number of bytes, got ${budgetBytes}`);
  }

  /** Registers a contributor under a fixed name (replacing one of that name); returns its removal. */
  add(name: string, contributor: MemoryContributor): () => void {
    this.contributors.set(name, contributor);
    return () => {
      if (this.contributors.get(name) === contributor) this.contributors.delete(name);
    };
  }

  /** Bytes held over all contributors. */
  bytes(): number {
    let sum = 0;
    for (const c of this.contributors.values()) sum += c.bytes();
    return sum;
  }

  /** Entries evicted so far (for metrics). */
  get evictions(): number {
    return this.evictedTotal;
  }

  /** While over the budget, evicts idle entries of every contributor, least recently used first. */
  enforce(): EnforceResult {
    let held = this.bytes();
    const result: EnforceResult = { evicted: 0, bytesFreed: 0 };
    if (held <= this.budgetBytes) return result;
    const candidates = [...this.contributors.values()]
      .flatMap((c) => c.evictable?.() ?? [])
      .filter((c) => c.bytes > 0)
      .sort((a, b) => a.lastUsedMs - b.lastUsedMs);
    for (const candidate of candidates) {
      if (held <= this.budgetBytes) break;
      candidate.evict();
      held -= candidate.bytes;
      result.evicted++;
      result.bytesFreed += candidate.bytes;
    }
    this.evictedTotal += result.evicted;
    return result;
  }
}
