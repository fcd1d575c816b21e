/**
 * POST /v1/wal: one write batch of a living index, embedded and written as wal/<seq>.hwal,
 * create-if-absent. The IndexWriter Durable Object on the edge assigned `seq` and commits it only
 * after this answers, so:
 *   - a retry of the same batch (same batchHash) finds its own object and succeeds (existed: true),
 *     without embedding again;
 *   - another batch under a taken seq is refused (WalConflictError, 409): a seq means one batch;
 *   - a seal (an empty batch voiding a seq whose first write is in doubt) that finds the real batch
 *     already there answers that batch's hash (existed: true): whichever put won decides.
 * The hash is recomputed here over exactly what is written, so an edge/worker disagreement about
 * the canonical form is a 400 (BatchHashMismatchError), never a batch that no retry can match.
 */
import type { WalWriteAnswer, WalWriteRequest } from "../../../../shared/api/living-api.ts";
import { IndexFormatError } from "../../../../shared/index/errors.ts";
import { walKey } from "../../../../shared/index/keys.ts";
import { batchHash, decodeWalBatch, encodeWalBatch, type WalBatch, type WalDocument } from "../../../../shared/index/wal.ts";
import { AlreadyExistsError, type BlobStore, isNotFound } from "../../store/blob-store.ts";
import { BatchHashMismatchError, StorageUnavailableError, WalConflictError } from "./errors.ts";

export interface WalWriterDeps {
  store: BlobStore;
  /** The worker's document encoder (HypencoderRuntime.embedDocuments). */
  embed: (texts: readonly string[], options: { maxLength?: number }) => Promise<Float32Array>;
  model: { id: string; embeddingDim: number };
  now?: () => Date;
}

/** The request's documents as the WAL stores them: every field but id, text included. */
export function walDocuments(upsert: WalWriteRequest["upsert"]): WalDocument[] {
  return upsert.map(({ id, ...fields }) => ({ id, fields }));
}

export async function writeWalBatch(deps: WalWriterDeps, request: WalWriteRequest, signal?: AbortSignal): Promise<WalWriteAnswer> {
  const { tenant, index, seq } = request;
  if (request.seal && (request.upsert.length > 0 || request.delete.length > 0)) {
    throw new BatchHashMismatchError("a seal is an empty batch: it must not carry upserts or deletes");
  }
  const upsert = walDocuments(request.upsert);
  const hash = batchHash(upsert, request.delete);
  if (hash !== request.batchHash) {
    throw new BatchHashMismatchError(
      `batchHash ${request.batchHash} is not the hash of the batch sent (the worker computes ${hash}); nothing was written`,
    );
  }
  const key = walKey(tenant, index, seq);

  // A retry usually finds its object: answer without embedding the documents again.
  const present = await storage(`checking write batch ${seq} of ${tenant}/${index}`, () => deps.store.head(key));
  if (present) return answerExisting(deps, key, request, hash);

  signal?.throwIfAborted();
  const embeddings = upsert.length > 0 ? await deps.embed(upsert.map((d) => String(d.fields.text)), request.docMaxLength ? { maxLength: request.docMaxLength } : {}) : new Float32Array(0);
  const batch: WalBatch = {
    tenant,
    index,
    seq,
    batchHash: hash,
    createdAt: (deps.now?.() ?? new Date()).toISOString(),
    modelId: deps.model.id,
    dim: deps.model.embeddingDim,
    upsert,
    embeddings,
    delete: request.delete,
  };
  const bytes = encodeWalBatch(batch);
  signal?.throwIfAborted();
  try {
    await deps.store.put(key, bytes, { bytes: bytes.length, contentType: "application/octet-stream", ifAbsent: true });
  } catch (e) {
    if (e instanceof AlreadyExistsError) return answerExisting(deps, key, request, hash);
    throw unavailable(`writing batch ${seq} of ${tenant}/${index}`, e);
  }
  return { seq, batchHash: hash, upserted: upsert.length, deleted: request.delete.length, bytes: bytes.length, existed: false };
}

/** The object exists: the same batch (a retry), the real batch a seal lost to, or a conflict. */
async function answerExisting(deps: WalWriterDeps, key: string, request: WalWriteRequest, hash: string): Promise<WalWriteAnswer> {
  const bytes = await storage(`reading write batch ${request.seq} of ${request.tenant}/${request.index}`, () => deps.store.get(key));
  const existing = decodeWalBatch(bytes, key);
  if (existing.tenant !== request.tenant || existing.index !== request.index || existing.seq !== request.seq) {
    throw new IndexFormatError(`WAL object ${key} holds ${existing.tenant}/${existing.index} seq ${existing.seq}`);
  }
  if (existing.batchHash !== hash && !request.seal) {
    throw new WalConflictError(
      `seq ${request.seq} of ${request.tenant}/${request.index} already holds another batch (hash ${existing.batchHash.slice(0, 12)}…); a seq is written once`,
    );
  }
  return { seq: request.seq, batchHash: existing.batchHash, upserted: existing.upsert.length, deleted: existing.delete.length, bytes: bytes.length, existed: true };
}

async function storage<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw unavailable(what, e);
  }
}

function unavailable(what: string, e: unknown): Error {
  // Not found surfaces as such (a sweep racing a read); anything else means the store did not answer.
  if (isNotFound(e)) return e;
  return new StorageUnavailableError(`object storage failed while ${what}; nothing is acknowledged, retry shortly`, e);
}
