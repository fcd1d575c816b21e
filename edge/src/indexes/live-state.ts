/**
 * The living part of GET /v1/indexes/:id: live documents, segments and uncompacted documents from
 * the index's owner worker (POST /v1/index-state, which reads the active version and the tail), the
 * seqs from D1, and what the index's writer knows (a write in doubt, batches waiting for compaction).
 * With no worker answering, D1's and the writer's figures stand in, and `stateSource` says so.
 */
import { z } from "zod";
import type { IndexStateRequest } from "../../../shared/api/living-api.ts";
import type { IndexRecord, IndexVersionRecord } from "../db/indexes.ts";
import type { EdgeBindings } from "../env.ts";
import { ApiError, WorkerRejectedError } from "../errors.ts";
import { indexWriterStub, type WriterState } from "../living/index-writer.ts";
import { tryOwners } from "../routing/owner-call.ts";
import { indexOwnerKey } from "../routing/rendezvous.ts";
import type { Fetcher } from "../routing/worker-client.ts";
import { workerPoolFromEnv } from "../routing/worker-pool.ts";
import type { liveState } from "./schemas.ts";

/** A detail page should not hang on a slow worker: it falls back to D1 after this. */
const STATE_TIMEOUT_MS = 5_000;

const workerStateSchema = z.object({
  docCount: z.number().int().nonnegative(),
  pendingDocs: z.number().int().nonnegative(),
  segments: z.array(z.object({ id: z.string(), docCount: z.number().int(), deletedDocs: z.number().int() })),
  coveredSeq: z.number().int().nonnegative(),
  tailBatches: z.number().int().nonnegative(),
});

export interface LiveStateInput {
  env: EdgeBindings;
  fetcher: Fetcher;
  tenant: string;
  index: IndexRecord;
  /** The active, ready version (undefined: never built). */
  active: IndexVersionRecord | undefined;
  signal?: AbortSignal;
}

export async function liveIndexState(input: LiveStateInput): Promise<z.infer<typeof liveState>> {
  const { index, active } = input;
  const headSeq = index.headSeq;
  const compactedSeq = active?.coveredSeq ?? 0;
  const writer = await writerState(input.env, input.tenant, index.id);
  const writes = writer && { inDoubtSeq: writer.inDoubtSeq, pendingBatches: writer.pendingBatches, tailSince: writer.tailSince };
  // Nothing built and nothing written: nothing to ask a worker about.
  if (!active && headSeq === 0) return { docCount: 0, headSeq, compactedSeq, segments: 0, pendingDocs: 0, stateSource: "catalog", writer: writes };
  const state = await workerState(input, active?.version ?? 0, compactedSeq, headSeq);
  if (state) {
    return { docCount: state.docCount, headSeq, compactedSeq, segments: state.segments.length, pendingDocs: state.pendingDocs, stateSource: "worker", writer: writes };
  }
  return {
    docCount: index.docCount,
    headSeq,
    compactedSeq,
    segments: active?.shards.length ?? 0,
    pendingDocs: writer?.pendingDocs ?? 0,
    stateSource: "catalog",
    writer: writes,
  };
}

async function workerState(input: LiveStateInput, version: number, coveredSeq: number, headSeq: number): Promise<z.infer<typeof workerStateSchema> | null> {
  let pool;
  try {
    pool = workerPoolFromEnv(input.env);
  } catch (error) {
    if (error instanceof ApiError) return null;
    throw error;
  }
  const request: IndexStateRequest = {
    tenant: input.tenant,
    index: input.index.id,
    version,
    ...(headSeq > coveredSeq ? { tail: { fromSeq: coveredSeq, toSeq: headSeq } } : {}),
  };
  try {
    const answered = await tryOwners({
      key: indexOwnerKey(input.tenant, input.index.id),
      pool: { ...pool, timeoutMs: Math.min(pool.timeoutMs, STATE_TIMEOUT_MS) },
      fetcher: input.fetcher,
      path: "/v1/index-state",
      tenant: input.tenant,
      json: request,
      accept: "application/json",
      maxAttempts: 2,
      signal: input.signal,
      read: async (response) => workerStateSchema.parse(await response.json()),
    });
    return answered?.value ?? null;
  } catch (error) {
    // A worker refusing the request (e.g. an older worker without the route) is no reason to fail the page.
    if (error instanceof WorkerRejectedError) {
      console.warn("index-state refused", error.status, error.code);
      return null;
    }
    throw error;
  }
}

/** The writer's view; null if the Durable Object could not be reached (the page still answers). */
async function writerState(env: EdgeBindings, tenant: string, index: string): Promise<WriterState | null> {
  try {
    return await indexWriterStub(env, tenant, index).state();
  } catch (error) {
    console.warn("IndexWriter state unavailable", (error as Error).message);
    return null;
  }
}
