/**
 * The sweeper (POST /v1/sweep; request: living-api.ts sweepRequestSchema, called by the edge after
 * the grace period): deletes what no kept version needs.
 *
 * - `everything` (the index was deleted): every object under the index prefix, and the listed uploads.
 * - Otherwise the keep-set is, for each kept version with a manifest, that manifest and every key it
 *   references (segments and deletion bitmaps, resolved with manifestKeyBase: a format 2 version
 *   keeps segments of older versions by reference); for a kept version WITHOUT a manifest (a build
 *   or compaction still running), its whole folder. Deleted: every other key under
 *   <index>/versions/, WAL batches with seq <= walUpToSeq, and the listed upload prefixes. Keys
 *   elsewhere under the index prefix are left alone, and so are folders of versions above
 *   `versionsUpTo` when the edge gives it (reserved after it chose keepVersions: maybe being written).
 *
 * Never deletes a key a kept manifest references: the keep-set is built from the manifests before
 * anything is listed or deleted, and a kept manifest that cannot be read or parsed refuses the whole
 * sweep (SweepRefusedError) instead of guessing.
 */
import type { SweepAnswer, SweepRequest } from "../../../../shared/api/living-api.ts";
import { sweepRequestSchema } from "../../../../shared/api/living-api.ts";
import { indexPrefix, MANIFEST_FILE, parseVersion, parseWalFileName, uploadPrefix, versionPrefix, walPrefix } from "../../../../shared/index/keys.ts";
import { manifestKeyBase, parseIndexManifest } from "../../../../shared/index/manifest.ts";
import { type BlobStore, isNotFound } from "../../store/blob-store.ts";
import { SweepRefusedError } from "./errors.ts";
import type { IndexLogger } from "../index-backend.ts";

/** Deletes at once. */
const DELETE_CONCURRENCY = 16;

export interface SweepDeps {
  store: BlobStore;
  logger?: IndexLogger;
}

export async function runSweep(rawRequest: SweepRequest, deps: SweepDeps): Promise<SweepAnswer> {
  const request = sweepRequestSchema.parse(rawRequest);
  const { store } = deps;
  const { tenant, index } = request;
  const started = performance.now();
  const root = indexPrefix(tenant, index);
  const log = { tenant, index, everything: request.everything };
  let deletedObjects = 0;
  let keptObjects = 0;

  if (request.everything) {
    deletedObjects += await store.deletePrefix(root);
    for (const upload of request.uploads) deletedObjects += await store.deletePrefix(uploadPrefix(tenant, upload));
  } else {
    // The keep-set first, from the manifests alone.
    const keepKeys = new Set<string>();
    const keepFolders: string[] = [];
    for (const version of new Set(request.keepVersions)) {
      const folder = versionPrefix(tenant, index, version);
      const key = folder + MANIFEST_FILE;
      let bytes: Uint8Array;
      try {
        bytes = await store.get(key);
      } catch (e) {
        if (!isNotFound(e)) throw e;
        keepFolders.push(folder); // building or compacting: all of it may become the version
        continue;
      }
      let manifest;
      try {
        manifest = parseIndexManifest(new TextDecoder().decode(bytes), key);
        if (manifest.tenant !== tenant || manifest.index !== index || manifest.indexVersion !== version) throw new Error(`it describes ${manifest.tenant}/${manifest.index}@${manifest.indexVersion}`);
      } catch (e) {
        throw new SweepRefusedError(`kept version ${version} of index ${index} has an unreadable manifest (${(e as Error).message}); nothing was deleted`);
      }
      const base = manifestKeyBase(manifest, folder);
      keepKeys.add(key);
      for (const s of manifest.shards) {
        keepKeys.add(base + s.key);
        if (s.deletes) keepKeys.add(base + s.deletes.key);
      }
    }
    const versionsRoot = `${root}versions/`;
    /** A folder of a version reserved after the request was made (versionsUpTo) may be being written. */
    const tooNew = (key: string) => {
      if (request.versionsUpTo === undefined) return false;
      const version = parseVersion(key.slice(versionsRoot.length).split("/")[0]!);
      return version !== undefined && version > request.versionsUpTo;
    };
    const kept = (key: string) => keepKeys.has(key) || keepFolders.some((f) => key.startsWith(f)) || tooNew(key);

    const doomed: string[] = [];
    for (const key of await store.list(versionsRoot)) {
      if (kept(key)) keptObjects++;
      else doomed.push(key);
    }
    const wal = walPrefix(tenant, index);
    for (const key of await store.list(wal)) {
      const seq = parseWalFileName(key.slice(wal.length));
      if (seq !== undefined && seq <= request.walUpToSeq) doomed.push(key);
      else keptObjects++;
    }
    deletedObjects += await deleteAll(store, doomed);
    for (const upload of request.uploads) deletedObjects += await store.deletePrefix(uploadPrefix(tenant, upload));
  }

  const answer: SweepAnswer = { deletedObjects, keptObjects, ms: Math.round(performance.now() - started) };
  deps.logger?.info({ ...log, keepVersions: request.keepVersions, walUpToSeq: request.walUpToSeq, uploads: request.uploads.length, ...answer }, "index sweep done");
  return answer;
}

async function deleteAll(store: BlobStore, keys: readonly string[]): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < keys.length) await store.delete(keys[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, keys.length) }, worker));
  return keys.length;
}
