/**
 * Shard placement by rendezvous (highest-random-weight) hashing: every (shard, worker) pair gets a
 * pseudo-random weight and a shard's owners are the workers in descending weight. Any edge isolate
 * computes the same order from the same pool with no coordination; removing a worker moves only the
 * shards it owned (each to its next owner), and adding one takes about 1/n of the shards from others,
 * so the workers' shard caches stay warm across pool changes.
 */

/**
 * cyrb53 (public domain): a fast 53-bit string hash with good avalanche. Synchronous, unlike
 * WebCrypto's digest, which matters because ownersFor runs once per shard per query. Not a
 * security boundary: a tenant choosing ids that collide only changes where its own shards live.
 */
export function hash53(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** The weight of one (shard, worker) pair. The separator keeps ("a/b","c") and ("a","b/c") apart. */
export function rendezvousWeight(shardKey: string, worker: string): number {
  return hash53(`${shardKey}\u0000${worker}`);
}

/** Workers in the order a shard should be tried: first choice first. Ties (practically never) break by URL. */
export function ownersFor(shardKey: string, workers: readonly string[]): string[] {
  return workers
    .map((worker) => ({ worker, weight: rendezvousWeight(shardKey, worker) }))
    .sort((a, b) => b.weight - a.weight || (a.worker < b.worker ? -1 : a.worker > b.worker ? 1 : 0))
    .map((o) => o.worker);
}

/**
 * The key a shard is placed by. Versions are part of it: a new version's shards are new files, and
 * spreading them independently avoids one worker inheriting every large shard of every version.
 */
export function shardPlacementKey(tenant: string, index: string, version: number, shardId: string): string {
  return `${tenant}/${index}/v${version}/${shardId}`;
}

/**
 * The key an index's own worker is placed by: the one that writes its WAL batches (POST /v1/wal),
 * scores its tail (the TAIL_SHARD_ID pseudo-shard of a search), reads documents by id and reports
 * its state. Not versioned, unlike shards: the worker that wrote the batches has them in its WAL
 * cache, and a compaction (a new version) should not move the tail to a cold worker.
 */
export function indexOwnerKey(tenant: string, index: string): string {
  return `${tenant}/${index}/tail`;
}
