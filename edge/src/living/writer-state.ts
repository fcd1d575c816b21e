/**
 * The IndexWriter's pending-tail counters in Durable Object storage (H3 owns this module; this is
 * H4's stand-in with exactly the interface DESIGN-10.md names, so that maintenance compiles and is
 * tested). Keys: `writer:pendingDocs`, `writer:pendingBatches`, `writer:tailSince` (ms epoch of the
 * oldest batch not yet compacted) and a per-seq ledger `ledger:<seq>` = documents upserted by it.
 */

const PENDING_DOCS = "writer:pendingDocs";
const PENDING_BATCHES = "writer:pendingBatches";
const TAIL_SINCE = "writer:tailSince";
const LEDGER = "ledger:";
const ledgerKey = (seq: number) => `${LEDGER}${String(seq).padStart(16, "0")}`;

export async function pendingDocs(storage: DurableObjectStorage): Promise<number> {
  return (await storage.get<number>(PENDING_DOCS)) ?? 0;
}

export async function pendingBatches(storage: DurableObjectStorage): Promise<number> {
  return (await storage.get<number>(PENDING_BATCHES)) ?? 0;
}

/** When the oldest batch not yet compacted was committed (ms epoch); null when there is none. */
export async function tailSince(storage: DurableObjectStorage): Promise<number | null> {
  return (await storage.get<number>(TAIL_SINCE)) ?? null;
}

/** After a commit of batch `seq` that upserted `upserted` documents at `at` (ms epoch). */
export async function recordPendingBatch(storage: DurableObjectStorage, seq: number, upserted: number, at: number): Promise<void> {
  const [docs, batches, since] = await Promise.all([pendingDocs(storage), pendingBatches(storage), tailSince(storage)]);
  await storage.put({ [ledgerKey(seq)]: upserted, [PENDING_DOCS]: docs + upserted, [PENDING_BATCHES]: batches + 1, [TAIL_SINCE]: since ?? at });
}

/**
 * The active version now covers every seq <= coveredSeq: drops those from the ledger and recounts
 * the pending counters from what is left (upserts with seq > coveredSeq).
 */
export async function resetPending(storage: DurableObjectStorage, coveredSeq: number): Promise<void> {
  const ledger = await storage.list<number>({ prefix: LEDGER });
  const covered: string[] = [];
  let docs = 0;
  let batches = 0;
  for (const [key, upserted] of ledger) {
    if (Number(key.slice(LEDGER.length)) <= coveredSeq) covered.push(key);
    else {
      docs += upserted;
      batches += 1;
    }
  }
  for (let i = 0; i < covered.length; i += 128) await storage.delete(covered.slice(i, i + 128));
  await storage.put({ [PENDING_DOCS]: docs, [PENDING_BATCHES]: batches });
  // The ledger keeps no times: a tail that is left keeps the oldest time known (it only ages sooner).
  if (batches === 0) await storage.delete(TAIL_SINCE);
}
