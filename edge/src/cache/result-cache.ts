/**
 * Search result cache on the Workers Cache API (caches.default, per data centre).
 *
 * The key is a synthetic URL whose path holds a SHA-256 over everything that can change an answer:
 * tenant, index, the ACTIVE version (resolved from D1 before the lookup, so a newly activated version
 * can never be answered from an older version's entry), the consistency and the index's head seq when
 * the answer reads the WAL tail (so a cached answer never outlives a write), the normalised query and every result-affecting
 * parameter, the filter in its canonical form, plus the response format. The tenant id is hashed in (and also named in the path), so no
 * request of one tenant can produce another tenant's key.
 *
 * Only complete (non-partial), non-streamed answers are stored; streamed responses are never cached
 * (they are the interactive path, and caching them would mean buffering the whole stream).
 * Writes go through waitUntil, so they never delay the response.
 *
 * The Cache API is a no-op on *.workers.dev hosts: production needs a custom domain for hits.
 */
import { sha256Hex } from "../../../shared/api/signing.ts";
import { resolveSearchParams, type SearchParams } from "../../../shared/api/worker-api.ts";
import { queryKeyText } from "../../../shared/text/query-key-text.ts";

export const CACHE_HOST = "https://search-cache.hypencoder.internal";
export const DEFAULT_RESULT_CACHE_TTL_SECONDS = 300;

export type ResultFormat = "json" | "msgpack";

export interface ResultCacheKeyInput {
  tenant: string;
  index: string;
  version: number;
  query: string;
  params: SearchParams;
  fields: readonly string[];
  format: ResultFormat;
  consistency: "strong" | "eventual";
  /** The WAL head the answer saw (the tail's toSeq), or null when it read no tail. */
  headSeq: number | null;
  /**
   * The filter's canonical text (shared/filter/filter.ts canonicalFilter), or null for no filter:
   * equivalent filters (and/or lists in any order, repeated in/nin values) share one entry.
   */
  filter?: string | null;
}

/**
 * Same model input, same key: the tokenizer's own text cleaning (shared/text/query-key-text.ts), so
 * NFC, control characters dropped, whitespace runs → one space, trimmed — and nothing the model tells apart.
 */
export function normaliseQuery(query: string): string {
  return queryKeyText(query);
}

/** A synthetic GET URL: tenant/index/version in the path for debugging, the hash of everything as the leaf. */
export async function resultCacheKey(input: ResultCacheKeyInput): Promise<string> {
  // An array, not an object: the order is fixed here, not by how callers happened to build params.
  // Defaults resolved, so leaving a parameter out and giving its default value share an entry.
  const params = resolveSearchParams(input.params);
  const canonical = JSON.stringify([
    "v4",
    input.tenant,
    input.index,
    input.version,
    input.consistency,
    // A write raises the head: no answer cached before it can be served after it.
    input.headSeq,
    normaliseQuery(input.query),
    params.k,
    params.mode,
    params.variant,
    params.entryPoints,
    params.ncandidates,
    params.maxIter,
    params.proxySeeds,
    params.earlyStop,
    params.seed,
    // Field order does not change the answer's content, so sorted fields share an entry.
    [...new Set(input.fields)].sort(),
    input.format,
    input.filter ?? null,
  ]);
  const digest = await sha256Hex(new TextEncoder().encode(canonical));
  const path = [input.tenant, input.index, `v${input.version}`, input.headSeq === null ? "segments" : `h${input.headSeq}`].map(encodeURIComponent).join("/");
  return `${CACHE_HOST}/${path}/${digest}`;
}

export interface ResultCache {
  match(key: string): Promise<Response | undefined>;
  /** Stores in the background; the returned promise is only for tests. */
  put(key: string, response: Response, waitUntil: (p: Promise<unknown>) => void): void;
}

export function resultCache(ttlSeconds = DEFAULT_RESULT_CACHE_TTL_SECONDS, cache: Cache = caches.default): ResultCache {
  return {
    async match(key) {
      try {
        return await cache.match(new Request(key));
      } catch (error) {
        // A cache failure is a miss, never a failed search.
        console.warn("result cache read failed", (error as Error).name);
        return undefined;
      }
    },
    put(key, response, waitUntil) {
      const stored = new Response(response.body, response);
      // Cache API expiry comes from Cache-Control; the entry is private to this synthetic URL.
      stored.headers.set("cache-control", `public, max-age=${ttlSeconds}`);
      stored.headers.delete("x-cache");
      stored.headers.delete("set-cookie");
      waitUntil(cache.put(new Request(key), stored).catch((error: unknown) => console.warn("result cache write failed", (error as Error).name)));
    },
  };
}
