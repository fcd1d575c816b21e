/**
 * The living-index routes of a fake GPU worker (on top of fake-workers.ts): POST /v1/wal stores
 * batches create-if-absent in a Map standing in for the WAL in S3 (same hash: a retry; a seal over a
 * stored batch: the batch wins; another hash: 409 wal_conflict), POST /v1/documents/get and
 * POST /v1/index-state answer from it. Faults are scriptable: `lostAnswers` stores the batch and then
 * answers 503, as a worker that dies between the S3 put and its answer.
 */
import { runInDurableObject } from "cloudflare:test";
import type { WalWriteAnswer, WalWriteRequest } from "../../shared/api/living-api.ts";
import type { IndexWriter } from "../src/living/index-writer.ts";
import type { FakeWorkerPool } from "./fake-workers.ts";

export interface StoredBatch {
  seq: number;
  batchHash: string;
  upsert: Array<{ id: string } & Record<string, unknown>>;
  delete: string[];
  seal: boolean;
}

export interface FakeWal {
  /** seq → batch, per `${tenant}/${index}`. */
  batches: Map<string, Map<number, StoredBatch>>;
  /** The next N WAL calls store the batch (if absent) and then answer 503. */
  lostAnswers: number;
  of(tenant: string, index: string): Map<number, StoredBatch>;
}

export function fakeWal(pool: FakeWorkerPool): FakeWal {
  const wal: FakeWal = {
    batches: new Map(),
    lostAnswers: 0,
    of(tenant, index) {
      const key = `${tenant}/${index}`;
      if (!wal.batches.has(key)) wal.batches.set(key, new Map());
      return wal.batches.get(key)!;
    },
  };
  pool.routes.set("POST /v1/wal", (call) => {
    const request = call.body as unknown as WalWriteRequest;
    const log = wal.of(request.tenant, request.index);
    const existing = log.get(request.seq);
    const answer = (batch: StoredBatch, existed: boolean): WalWriteAnswer => ({
      seq: batch.seq,
      batchHash: batch.batchHash,
      upserted: batch.upsert.length,
      deleted: batch.delete.length,
      bytes: 100,
      existed,
    });
    const lose = () => {
      wal.lostAnswers--;
      return Response.json({ error: { code: "storage_unavailable", message: "answer lost" } }, { status: 503 });
    };
    if (existing) {
      if (wal.lostAnswers > 0) return lose();
      if (existing.batchHash === request.batchHash || request.seal) return Response.json(answer(existing, true));
      return Response.json({ error: { code: "wal_conflict", message: `seq ${request.seq} holds another batch` } }, { status: 409 });
    }
    const stored: StoredBatch = { seq: request.seq, batchHash: request.batchHash, upsert: request.upsert as StoredBatch["upsert"], delete: request.delete, seal: request.seal };
    log.set(request.seq, stored);
    if (wal.lostAnswers > 0) return lose();
    return Response.json(answer(stored, false));
  });
  return wal;
}

/** Points the index's IndexWriter at the fake pool (the object runs in this isolate). */
export async function useFakePool(env: { INDEX_WRITER: DurableObjectNamespace<IndexWriter> }, tenant: string, index: string, pool: FakeWorkerPool): Promise<DurableObjectStub<IndexWriter>> {
  const stub = env.INDEX_WRITER.get(env.INDEX_WRITER.idFromName(`${tenant}/${index}`));
  await runInDurableObject(stub, (instance) => {
    // The class binds EdgeBindings, the test pool's type Cloudflare.Env (EdgeBindings plus test bindings).
    (instance as unknown as IndexWriter).fetcher = pool.fetcher;
  });
  return stub;
}
