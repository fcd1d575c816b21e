/**
 * IndexWriter: one Durable Object per index (named `${tenant}/${index}`), the single writer of its
 * write-ahead log. It assigns each write a seq, has the index's owner worker store the batch in S3
 * (POST /v1/wal, create-if-absent), then commits D1 indexes.head_seq and only then acknowledges.
 * Its alarm runs the index's maintenance (compaction, GC: maintenance.ts) and, once the index is
 * deleted, its destruction.
 *
 * Guarantees (README "Living indexes"):
 * - seqs strictly increase: seq = max(stored nextSeq, D1 head_seq + 1), assigned under one mutex;
 * - nothing is acknowledged that is not stored: the answer comes after the worker's 2xx and the commit;
 * - nothing is applied twice: an Idempotency-Key replays its first answer; a batch whose outcome is
 *   unknown (worker timed out, edge died) is "in doubt" until the next write either resends it (the
 *   same key and body: the worker finds its own object) or seals its seq with an empty batch — the
 *   put that wins at S3 decides whether the seq holds the batch or nothing.
 *
 * Why an explicit mutex: a Durable Object's input gate only holds events back while STORAGE calls
 * are in flight; during a fetch to a worker another write would run, and two writes could take seqs
 * out of order or interleave their commits.
 */
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import type { UpsertDocument, WalWriteRequest, WriteAnswer } from "../../../shared/api/living-api.ts";
import { batchHash, type WalDocument } from "../../../shared/index/wal.ts";
import { commitHeadSeq, getHeadSeq } from "../db/indexes.ts";
import type { EdgeBindings } from "../env.ts";
import { ApiError, WorkerRejectedError } from "../errors.ts";
import { tryOwners } from "../routing/owner-call.ts";
import { indexOwnerKey } from "../routing/rendezvous.ts";
import { defaultFetcher, type Fetcher } from "../routing/worker-client.ts";
import { type WorkerPoolConfig, workerPoolFromEnv } from "../routing/worker-pool.ts";
import { destroyIndex, type MaintenanceContext, runMaintenance } from "./maintenance.ts";
import {
  type IdempotencyRecord,
  IDEMPOTENCY_TTL_MS,
  idempotencyEntries,
  idempotencyKeyOf,
  type InDoubtBatch,
  ledgerKeyOf,
  pendingBatches,
  pendingDocs,
  pruneIdempotencyKeys,
  recordCommitted,
  tailSince,
  WRITER_KEYS,
} from "./writer-state.ts";

/** A validated write (the route parsed the body with writeBodySchema). */
export interface WriteInput {
  tenant: string;
  index: string;
  upsert: UpsertDocument[];
  delete: string[];
  idempotencyKey?: string;
}

export interface WriteFailure {
  ok: false;
  status: 400 | 404 | 409 | 502 | 503;
  code: string;
  message: string;
  retryAfterSeconds?: number;
}

/** RPC answers are plain data (an ApiError would not survive the trip): the route turns failures into ApiErrors. */
export type WriteResult = { ok: true; answer: WriteAnswer; replayed: boolean } | WriteFailure;

/** What the writer knows that D1 does not, for GET /v1/indexes/:id. */
export interface WriterState {
  nextSeq: number | null;
  /** A write whose outcome is not yet known (the next write settles it). */
  inDoubtSeq: number | null;
  pendingDocs: number;
  pendingBatches: number;
  /** ISO time of the oldest uncompacted batch. */
  tailSince: string | null;
  deleted: boolean;
}

/** How soon after a write maintenance looks at the tail. */
export const MAINTENANCE_DELAY_MS = 1_000;
/** Seqs burned in a row before a write gives up, when the worker finds another batch at each (only after this object lost its storage). */
const CONFLICT_RETRIES = 3;

const walAnswerSchema = z.object({
  seq: z.number().int().positive(),
  batchHash: z.string(),
  upserted: z.number().int().nonnegative(),
  deleted: z.number().int().nonnegative(),
  existed: z.boolean(),
});
type WalAnswer = z.infer<typeof walAnswerSchema>;

type SendOutcome =
  | { kind: "stored"; answer: WalAnswer }
  /** The seq already holds a different batch. */
  | { kind: "conflict" }
  /** The worker refused the batch itself: nothing was stored. */
  | { kind: "rejected"; status: number; code: string; message: string }
  /** No worker answered (down, timed out, storage failing): the batch may or may not be stored. */
  | { kind: "unavailable" };

const EMPTY_BATCH_HASH = batchHash([], []);

const unavailable = (message: string): WriteFailure => ({ ok: false, status: 503, code: "workers_unavailable", message, retryAfterSeconds: 1 });
const indexGone = (index: string): WriteFailure => ({ ok: false, status: 404, code: "not_found", message: `index ${index} not found` });

/** The DO of one index. */
export function indexWriterStub(env: Pick<EdgeBindings, "INDEX_WRITER">, tenant: string, index: string): DurableObjectStub<IndexWriter> {
  return env.INDEX_WRITER.get(env.INDEX_WRITER.idFromName(`${tenant}/${index}`));
}

/** The batch as the WAL stores and hashes it: every field but id, text included. */
export function walDocuments(upsert: readonly UpsertDocument[]): WalDocument[] {
  return upsert.map(({ id, ...fields }) => ({ id, fields }));
}

export class IndexWriter extends DurableObject<EdgeBindings> {
  /** How the object reaches the workers; tests swap in the fake pool (runInDurableObject). */
  fetcher: Fetcher = defaultFetcher;
  now: () => number = () => Date.now();
  private queue: Promise<unknown> = Promise.resolve();

  /** Stores one batch and answers {seq, upserted, deleted}, or says why not. */
  write(input: WriteInput): Promise<WriteResult> {
    return this.exclusive(() => this.writeNow(input));
  }

  /** The index was soft-deleted: refuse writes from now on, and destroy its data from the alarm. */
  destroy(tenant: string, index: string): Promise<void> {
    return this.exclusive(async () => {
      await this.ctx.storage.put({ [WRITER_KEYS.tenant]: tenant, [WRITER_KEYS.index]: index, [WRITER_KEYS.deleted]: true });
      await this.ctx.storage.setAlarm(this.now());
    });
  }

  /**
   * Makes sure maintenance runs for this index (compaction checks and GC sweeps): writes schedule it
   * themselves, but an index that only ever gets bulk builds needs this after each build's flip, or
   * its superseded versions would never be swept.
   */
  maintain(tenant: string, index: string): Promise<void> {
    return this.exclusive(async () => {
      const storage = this.ctx.storage;
      await storage.put({ [WRITER_KEYS.tenant]: tenant, [WRITER_KEYS.index]: index });
      const alarm = await storage.getAlarm();
      const soon = this.now() + MAINTENANCE_DELAY_MS;
      if (alarm === null || alarm > soon) await storage.setAlarm(soon);
    });
  }

  async state(): Promise<WriterState> {
    const storage = this.ctx.storage;
    const [nextSeq, inDoubt, docs, batches, since, deleted] = await Promise.all([
      storage.get<number>(WRITER_KEYS.nextSeq),
      storage.get<InDoubtBatch>(WRITER_KEYS.inDoubt),
      pendingDocs(storage),
      pendingBatches(storage),
      tailSince(storage),
      storage.get<boolean>(WRITER_KEYS.deleted),
    ]);
    return {
      nextSeq: nextSeq ?? null,
      inDoubtSeq: inDoubt?.seq ?? null,
      pendingDocs: docs,
      pendingBatches: batches,
      tailSince: since === null ? null : new Date(since).toISOString(),
      deleted: deleted === true,
    };
  }

  override async alarm(): Promise<void> {
    const storage = this.ctx.storage;
    const [tenant, index, deleted] = await Promise.all([
      storage.get<string>(WRITER_KEYS.tenant),
      storage.get<string>(WRITER_KEYS.index),
      storage.get<boolean>(WRITER_KEYS.deleted),
    ]);
    if (tenant === undefined || index === undefined) return;
    const context: MaintenanceContext = { env: this.env, storage, tenant, index, fetcher: this.fetcher, now: this.now };
    let next: number | null;
    if (deleted === true) {
      next = await destroyIndex(context);
    } else {
      await pruneIdempotencyKeys(storage, this.now());
      next = await runMaintenance(context);
    }
    if (next !== null) await storage.setAlarm(next);
  }

  /** Runs `work` after every earlier call has finished (the write mutex). */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async writeNow(input: WriteInput): Promise<WriteResult> {
    const storage = this.ctx.storage;
    if ((await storage.get<boolean>(WRITER_KEYS.deleted)) === true) return indexGone(input.index);
    await storage.put({ [WRITER_KEYS.tenant]: input.tenant, [WRITER_KEYS.index]: input.index });
    const hash = batchHash(walDocuments(input.upsert), input.delete);
    const key = input.idempotencyKey;
    const earlier = await this.earlierAnswer(key, hash);
    if (earlier) return earlier;
    let pool: WorkerPoolConfig;
    try {
      pool = workerPoolFromEnv(this.env);
    } catch (error) {
      return unavailable(error instanceof ApiError ? error.message : "search workers are not configured");
    }

    let resend: InDoubtBatch | undefined;
    const inDoubt = await storage.get<InDoubtBatch>(WRITER_KEYS.inDoubt);
    if (inDoubt) {
      // The retry of the write in doubt resends its own seq; any other write first settles it.
      if (key !== undefined && inDoubt.idempotencyKey === key && inDoubt.batchHash === hash) resend = inDoubt;
      else {
        const settled = await this.settle(inDoubt, pool, input);
        if (settled) return settled;
        // Settling may have committed the batch in doubt under this very key (sent with another body).
        const now = await this.earlierAnswer(key, hash);
        if (now) return now;
      }
    }

    for (let burned = 0; ; burned++) {
      let batch: InDoubtBatch;
      if (resend) {
        batch = resend;
        resend = undefined;
      } else {
        const head = await getHeadSeq(this.env.DB, input.tenant, input.index);
        if (head === null) return indexGone(input.index);
        const seq = Math.max((await storage.get<number>(WRITER_KEYS.nextSeq)) ?? 1, head + 1);
        batch = { seq, batchHash: hash, upserted: input.upsert.length, deleted: input.delete.length, ...(key === undefined ? {} : { idempotencyKey: key }) };
        // Persisted BEFORE the worker is called: if this object dies mid-call, the next write knows.
        await storage.put({ [WRITER_KEYS.inDoubt]: batch, [WRITER_KEYS.nextSeq]: seq + 1 });
      }
      const sent = await this.send(pool, input.tenant, input.index, batch, input.upsert, input.delete);
      switch (sent.kind) {
        case "stored":
          return this.commit(input.tenant, input.index, batch);
        case "conflict":
          await storage.delete(WRITER_KEYS.inDoubt);
          if (burned + 1 < CONFLICT_RETRIES) continue;
          console.error("IndexWriter: seqs keep holding other batches", input.tenant, input.index, batch.seq);
          return { ok: false, status: 503, code: "write_conflict", message: "the write log is out of step; try again shortly", retryAfterSeconds: 1 };
        case "rejected":
          // Refused as a whole: nothing was stored, so the seq is simply unused (gaps are allowed).
          await storage.delete(WRITER_KEYS.inDoubt);
          if (sent.status === 400) return { ok: false, status: 400, code: sent.code, message: sent.message };
          console.error("IndexWriter: a worker refused a WAL write", sent.status, sent.code);
          return { ok: false, status: 502, code: "upstream_rejected", message: "a GPU worker refused the write" };
        case "unavailable":
          // The batch may be stored: it stays in doubt, and nothing is acknowledged.
          return unavailable("no GPU worker confirmed the write, so it is not acknowledged; retry it with the same Idempotency-Key (a retry never applies it twice)");
      }
    }
  }

  /** The answer an Idempotency-Key already has: a replay for the same body, a 409 for another; null when unused. */
  private async earlierAnswer(key: string | undefined, hash: string): Promise<WriteResult | null> {
    if (key === undefined) return null;
    const seen = await this.ctx.storage.get<IdempotencyRecord>(idempotencyKeyOf(key));
    if (!seen || this.now() - seen.at >= IDEMPOTENCY_TTL_MS) return null;
    if (seen.bodyHash === hash) return { ok: true, answer: seen.answer, replayed: true };
    return { ok: false, status: 409, code: "idempotency_key_reused", message: "this Idempotency-Key was used with a different body; use a new key for a new write" };
  }

  /**
   * Settles the batch in doubt before a new seq is used: seals its seq with an empty batch. If the
   * worker finds the real batch there, it was stored after all and is committed now (and its
   * Idempotency-Key answers with it). Null when settled; otherwise the failure to answer.
   */
  private async settle(inDoubt: InDoubtBatch, pool: WorkerPoolConfig, input: WriteInput): Promise<WriteFailure | null> {
    const storage = this.ctx.storage;
    if ((await storage.get(ledgerKeyOf(inDoubt.seq))) !== undefined) {
      // Committed already (the object died between the commit and clearing the mark).
      await storage.delete(WRITER_KEYS.inDoubt);
      return null;
    }
    const seal: InDoubtBatch = { seq: inDoubt.seq, batchHash: EMPTY_BATCH_HASH, upserted: 0, deleted: 0 };
    const sent = await this.send(pool, input.tenant, input.index, seal, [], [], true);
    if (sent.kind === "unavailable") return unavailable("no GPU worker answered; the write was not applied; try again shortly");
    if (sent.kind === "stored" && sent.answer.batchHash === inDoubt.batchHash && inDoubt.batchHash !== EMPTY_BATCH_HASH) {
      const committed = await this.commit(input.tenant, input.index, inDoubt);
      return committed.ok ? null : committed;
    }
    if (sent.kind === "rejected") console.error("IndexWriter: a worker refused a seal", sent.status, sent.code);
    // Sealed (or refused, which stores nothing either): the seq is a gap.
    await storage.delete(WRITER_KEYS.inDoubt);
    return null;
  }

  /** head_seq in D1 first (the acknowledgement's condition), then the ledger, counters and idempotency record. */
  private async commit(tenant: string, index: string, batch: InDoubtBatch): Promise<WriteResult> {
    const storage = this.ctx.storage;
    let committed: boolean;
    try {
      committed = await commitHeadSeq(this.env.DB, tenant, index, batch.seq);
    } catch (error) {
      // Stored but not committed: still in doubt; a retry with the same key resends and commits it.
      console.error("IndexWriter: committing head_seq failed", (error as Error).message);
      return { ok: false, status: 503, code: "commit_failed", message: "the write could not be committed; retry it with the same Idempotency-Key", retryAfterSeconds: 1 };
    }
    if (!committed) {
      await storage.delete(WRITER_KEYS.inDoubt);
      return indexGone(index);
    }
    const now = this.now();
    const answer: WriteAnswer = { seq: batch.seq, upserted: batch.upserted, deleted: batch.deleted };
    const idempotency = batch.idempotencyKey === undefined ? {} : idempotencyEntries(batch.idempotencyKey, { bodyHash: batch.batchHash, answer, at: now });
    await recordCommitted(storage, batch.seq, batch.upserted, now, idempotency);
    await storage.delete(WRITER_KEYS.inDoubt);
    const alarm = await storage.getAlarm();
    if (alarm === null || alarm > now + MAINTENANCE_DELAY_MS) await storage.setAlarm(now + MAINTENANCE_DELAY_MS);
    return { ok: true, answer, replayed: false };
  }

  /** POST /v1/wal to the index's owner, failing over to the next owners. */
  private async send(pool: WorkerPoolConfig, tenant: string, index: string, batch: InDoubtBatch, upsert: UpsertDocument[], deletes: string[], seal = false): Promise<SendOutcome> {
    const request: WalWriteRequest = { tenant, index, seq: batch.seq, batchHash: batch.batchHash, upsert, delete: deletes, seal };
    try {
      const answered = await tryOwners({
        key: indexOwnerKey(tenant, index),
        pool,
        fetcher: this.fetcher,
        path: "/v1/wal",
        tenant,
        json: request,
        accept: "application/json",
        read: async (response) => walAnswerSchema.parse(await response.json()),
      });
      return answered ? { kind: "stored", answer: answered.value } : { kind: "unavailable" };
    } catch (error) {
      if (!(error instanceof WorkerRejectedError)) throw error;
      if (error.code === "wal_conflict") return { kind: "conflict" };
      return { kind: "rejected", status: error.status, code: error.code, message: error.message };
    }
  }
}
