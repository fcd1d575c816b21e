/**
 * The inner-product index the graph-search benchmarks seed the proxy walk from: the production one
 * (index/build/proxy-index.ts builds the shard's proxyIndex section, index/proxy-index-reader.ts
 * opens and searches it), over the bench's corpus, with the section cached on disk for the 1M corpus.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { DecodedShard } from "../shared/index/format.ts";
import { float32ArrayToHalf } from "../shared/qnet/half.ts";
import { buildProxyIndex as buildSection } from "../gpu-worker/src/index/build/proxy-index.ts";
import { prepareProxyIndex } from "../gpu-worker/src/index/proxy-index-reader.ts";
import { BUILD_DEFAULTS } from "../shared/api/worker-api.ts";
import type { InnerProductIndex } from "./graph-search-curves.ts";

export interface ProxyIndexHandle {
  index: InnerProductIndex;
  description: string;
  buildMs: number;
  cached: boolean;
  close(): void;
}

export async function buildProxyIndex(
  embeddings: Float32Array,
  dim: number,
  options: { cachePath?: string | undefined; half?: Uint16Array } = {},
): Promise<ProxyIndexHandle> {
  const n = embeddings.length / dim;
  const path = options.cachePath ? `${options.cachePath}-m${BUILD_DEFAULTS.proxyConnectivity}-ef${BUILD_DEFAULTS.proxyExpansionAdd}.hxp` : undefined;
  const t0 = performance.now();
  let section: Uint8Array | undefined;
  let cached = false;
  let buildMs = 0;
  if (path) {
    try {
      const [bytes, meta] = await Promise.all([readFile(path), readFile(`${path}.json`, "utf8")]);
      section = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      buildMs = (JSON.parse(meta) as { ms: number }).ms;
      cached = true;
    } catch {
      // not cached yet
    }
  }
  if (!section) {
    section = (await buildSection(embeddings, dim)) ?? new Uint8Array(0);
    buildMs = performance.now() - t0;
    if (path) {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(`${path}.tmp`, section);
      await rename(`${path}.tmp`, path);
      await writeFile(`${path}.json`, JSON.stringify({ ms: buildMs }));
    }
  }
  // What the reader reads of a decoded shard: its rows (fp16, as stored) and the section.
  const shard = { docCount: n, dim, embeddings: options.half ?? float32ArrayToHalf(embeddings), proxyIndex: section } as unknown as DecodedShard;
  const opened = performance.now();
  const proxy = await prepareProxyIndex(shard);
  const openMs = performance.now() - opened;
  return {
    index: proxy,
    description:
      proxy.kind === "hnsw"
        ? `the shard's proxyIndex section: usearch HNSW M=${BUILD_DEFAULTS.proxyConnectivity}, ef_add=${BUILD_DEFAULTS.proxyExpansionAdd}, ${(section.length / 2 ** 20).toFixed(0)} MiB; opened in ${(openMs / 1000).toFixed(1)} s`
        : "exact inner products (below the proxy index's row threshold)",
    buildMs,
    cached,
    close: () => proxy.close(),
  };
}
