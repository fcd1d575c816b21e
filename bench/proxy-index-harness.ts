/**
 * The inner-product index the graph-search benchmarks seed the proxy walk from: a usearch HNSW
 * index with the inner-product metric over the corpus, as the index build stores per shard, cached
 * on disk for the 1M corpus (usearch's own save format).
 */
import { access, mkdir, rename } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { dirname } from "node:path";
import { Index, type Matches, MetricKind, ScalarKind } from "usearch";
import type { InnerProductIndex } from "./graph-search-curves.ts";

export interface ProxyIndexHandle {
  index: InnerProductIndex;
  description: string;
  buildMs: number;
  cached: boolean;
  close(): void;
}

const CONNECTIVITY = 16;
const EXPANSION_ADD = 64;

export async function buildProxyIndex(embeddings: Float32Array, dim: number, options: { cachePath?: string | undefined } = {}): Promise<ProxyIndexHandle> {
  const n = embeddings.length / dim;
  const index = new Index({ dimensions: dim, metric: MetricKind.IP, quantization: ScalarKind.F16, connectivity: CONNECTIVITY, expansion_add: EXPANSION_ADD, expansion_search: 64, multi: false });
  const path = options.cachePath ? `${options.cachePath}.usearch` : undefined;
  const t0 = performance.now();
  let cached = false;
  if (path && (await access(path).then(() => true, () => false))) {
    index.load(path);
    cached = true;
  } else {
    const keys = new BigUint64Array(n);
    for (let r = 0; r < n; r++) keys[r] = BigInt(r);
    const slice = 65_536;
    for (let start = 0; start < n; start += slice) {
      const end = Math.min(n, start + slice);
      index.add(keys.subarray(start, end), embeddings.subarray(start * dim, end * dim), availableParallelism());
    }
    if (path) {
      await mkdir(dirname(path), { recursive: true });
      index.save(`${path}.tmp`);
      await rename(`${path}.tmp`, path);
    }
  }
  const buildMs = performance.now() - t0;
  return {
    index: {
      search(vector, count) {
        const found = index.search(vector, count, 1) as Matches;
        return Uint32Array.from(found.keys, (k) => Number(k));
      },
    },
    description: `usearch HNSW, inner product, f16, M=${CONNECTIVITY}, ef_add=${EXPANSION_ADD}`,
    buildMs,
    cached,
    close: () => {},
  };
}
