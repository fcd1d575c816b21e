/**
 * The IndexWriter's Durable Object storage, typed: every `writer:*` key in one place. The writer
 * (index-writer.ts) keeps them; maintenance (maintenance.ts) reads the pending counters to decide
 * when to compact, and calls resetPending after it flips to a compacted version.
 *
 * Pending = acknowledged upserts not yet in a graph segment. A small ledger (`writer:ledger:<seq>`,
 * one entry per committed batch: its upsert count and commit time) makes the counters recomputable
 * after a compaction covers a prefix of the tail: they become the sum over the batches after it.
 *
 * Read-modify-writes here await only storage calls: a Durable Object delivers no other event while
 * a storage operation is in flight (input gates), so each one is atomic against other requests.
 */
import type { WriteAnswer } from "../../../shared/api/living-api.ts";

export const WRITER_KEYS = {
  tenant: "writer:tenant",
  index: "writer:index",
  /** The next seq to assign (also bounded below by D1 head_seq + 1). */
  nextSeq: "writer:nextSeq",
  /** The batch sent to a worker but not yet committed: its outcome is unknown until sealed or resent. */
  inDoubt: "writer:inDoubt",
  pendingDocs: "writer:pendingDocs",
  pendingBatches: "writer:pendingBatches",
  /** ms epoch of the oldest pending batch's commit; absent when nothing is pending. */
  tailSince: "writer:tailSince",
  /** Set by destroy(): the index was deleted; writes are refused. */
  deleted: "writer:deleted",
  idempotencyPrefix: "writer:idem:",
  /** `writer:idemAt:<ms, padded>:<key>` → key: the Idempotency-Keys in the order they expire. */
  idempotencyByTimePrefix: "writer:idemAt:",
  ledgerPrefix: "writer:ledger:",
} as const;

/** How long an Idempotency-Key is remembered. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export interface InDoubtBatch {
  seq: number;
  batchHash: string;
  upserted: number;
  deleted: number;
  /** The write's Idempotency-Key, if it had one: a retry with it (and the same body) resends this seq. */
  idempotencyKey?: string;
}

export interface IdempotencyRecord {
  bodyHash: string;
  answer: WriteAnswer;
  /** ms epoch of the first answer. */
  at: number;
}

export interface LedgerEntry {
  upserted: number;
  /** ms epoch of the commit. */
  at: number;
}

export const idempotencyKeyOf = (key: string): string => `${WRITER_KEYS.idempotencyPrefix}${key}`;
const pad = (n: number): string => String(n).padStart(16, "0");
const idempotencyTimeKeyOf = (at: number, key: string): string => `${WRITER_KEYS.idempotencyByTimePrefix}${pad(at)}:${key}`;

/** The storage entries that remember an Idempotency-Key's answer (put them with the commit). */
export function idempotencyEntries(key: string, record: IdempotencyRecord): Record<string, unknown> {
  return { [idempotencyKeyOf(key)]: record, [idempotencyTimeKeyOf(record.at, key)]: key };
}
/** Zero-padded, so a listing of the prefix is in seq order. */
export const ledgerKeyOf = (seq: number): string => `${WRITER_KEYS.ledgerPrefix}${pad(seq)}`;
const seqOfLedgerKey = (key: string): number => Number(key.slice(WRITER_KEYS.ledgerPrefix.length));

/** Acknowledged upserts not yet compacted into a graph segment. */
export async function pendingDocs(storage: DurableObjectStorage): Promise<number> {
  return (await storage.get<number>(WRITER_KEYS.pendingDocs)) ?? 0;
}

/** Acknowledged batches not yet compacted. */
export async function pendingBatches(storage: DurableObjectStorage): Promise<number> {
  return (await storage.get<number>(WRITER_KEYS.pendingBatches)) ?? 0;
}

/** ms epoch of the oldest uncompacted batch's commit; null when nothing is pending. */
export async function tailSince(storage: DurableObjectStorage): Promise<number | null> {
  return (await storage.get<number>(WRITER_KEYS.tailSince)) ?? null;
}

/** Counts a committed batch as pending (its ledger entry and the counters) in one put. */
export async function recordCommitted(storage: DurableObjectStorage, seq: number, upserted: number, now: number, extra: Record<string, unknown> = {}): Promise<void> {
  const [docs, batches, since] = await Promise.all([pendingDocs(storage), pendingBatches(storage), tailSince(storage)]);
  const entry: LedgerEntry = { upserted, at: now };
  await storage.put({
    ...extra,
    [ledgerKeyOf(seq)]: entry,
    [WRITER_KEYS.pendingDocs]: docs + upserted,
    [WRITER_KEYS.pendingBatches]: batches + 1,
    [WRITER_KEYS.tailSince]: since ?? now,
  });
}

/**
 * After a compaction made every batch with seq <= coveredSeq part of the active version: drops
 * their ledger entries and recomputes the counters (and tailSince) from the batches after it.
 */
export async function resetPending(storage: DurableObjectStorage, coveredSeq: number): Promise<void> {
  const ledger = await storage.list<LedgerEntry>({ prefix: WRITER_KEYS.ledgerPrefix });
  const covered: string[] = [];
  let docs = 0;
  let batches = 0;
  let since: number | null = null;
  for (const [key, entry] of ledger) {
    if (seqOfLedgerKey(key) <= coveredSeq) {
      covered.push(key);
      continue;
    }
    docs += entry.upserted;
    batches += 1;
    since = since === null ? entry.at : Math.min(since, entry.at);
  }
  // storage.delete takes at most 128 keys per call.
  for (let i = 0; i < covered.length; i += 128) await storage.delete(covered.slice(i, i + 128));
  await storage.put({ [WRITER_KEYS.pendingDocs]: docs, [WRITER_KEYS.pendingBatches]: batches });
  if (since === null) await storage.delete(WRITER_KEYS.tailSince);
  else await storage.put(WRITER_KEYS.tailSince, since);
}

/** Forgets Idempotency-Keys older than IDEMPOTENCY_TTL_MS, oldest first (at most `limit` per call); returns how many. */
export async function pruneIdempotencyKeys(storage: DurableObjectStorage, now: number, limit = 500): Promise<number> {
  const expired = await storage.list<string>({
    prefix: WRITER_KEYS.idempotencyByTimePrefix,
    end: `${WRITER_KEYS.idempotencyByTimePrefix}${pad(Math.max(0, now - IDEMPOTENCY_TTL_MS))}`,
    limit,
  });
  const keys = [...expired].flatMap(([timeKey, key]) => [timeKey, idempotencyKeyOf(key)]);
  for (let i = 0; i < keys.length; i += 128) await storage.delete(keys.slice(i, i + 128));
  return expired.size;
}
