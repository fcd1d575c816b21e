/**
 * Splits a build's documents into shards by size, on document boundaries. The size of a shard is
 * known only once it is encoded, so each document's share is estimated up front from what it will
 * occupy: its embedding (dtype × dim), its graph row (degree u32 neighbours + one u32 offset), its
 * id and its stored fields (JSON length, which bounds msgpack's for text-like values).
 */
import { SHARD_MAX_BYTES, type ShardDtype } from "../../../../shared/index/format.ts";

/** Preamble, header JSON, section alignment padding and msgpack array headers, generously. */
export const SHARD_OVERHEAD_BYTES = 4096;
/** Stay well below the format's 4 GiB limit: estimates of fields can be a little low (numbers). */
const MAX_TARGET_BYTES = Math.floor(SHARD_MAX_BYTES * 0.85);

export interface ShardPlanOptions {
  dim: number;
  dtype: ShardDtype;
  /** The graph degree asked for (an upper bound on every row). */
  degree: number;
  /** Target shard size in bytes. */
  shardBytes: number;
}

const utf8Length = (s: string): number => Buffer.byteLength(s, "utf8");

/** Estimated bytes one document adds to a shard. */
export function estimateDocBytes(doc: { id: string; fields: Record<string, unknown> }, options: Pick<ShardPlanOptions, "dim" | "dtype" | "degree">): number {
  const embedding = options.dim * (options.dtype === "float16" ? 2 : 4);
  const graph = 4 * options.degree + 4;
  const id = utf8Length(doc.id) + 5; // msgpack str32 header at most
  const fields = utf8Length(JSON.stringify(doc.fields)) + 4; // + the fieldIndex entry
  return embedding + graph + id + fields;
}

/** Feed documents in order; `counts()` gives the documents per shard. */
export class ShardPlanner {
  private readonly target: number;
  private readonly shardCounts: number[] = [];
  private current = 0;
  private currentBytes = SHARD_OVERHEAD_BYTES;

  constructor(private readonly options: ShardPlanOptions) {
    this.target = Math.min(options.shardBytes, MAX_TARGET_BYTES);
  }

  add(doc: { id: string; fields: Record<string, unknown> }): void {
    const bytes = estimateDocBytes(doc, this.options);
    // A document never straddles shards; one over the target still gets a shard of its own.
    if (this.current > 0 && this.currentBytes + bytes > this.target) {
      this.shardCounts.push(this.current);
      this.current = 0;
      this.currentBytes = SHARD_OVERHEAD_BYTES;
    }
    this.current++;
    this.currentBytes += bytes;
  }

  /** Documents per shard, in order (empty for no documents). */
  counts(): number[] {
    return this.current > 0 ? [...this.shardCounts, this.current] : [...this.shardCounts];
  }
}
