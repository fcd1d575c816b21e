/**
 * A living index's background maintenance, against real D1 (migrated schema), real Durable Object
 * storage (runInDurableObject; the maintenance keys live beside whatever the object stores), real S3
 * (radosgw: compaction manifests) and the fake worker pool (edge/test/fake-workers.ts) for the GPU
 * side. Time is injected (ctx.now), so thresholds, grace periods and backoffs are tested exactly.
 */
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { env, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import type { CompactionRequest, SweepRequest } from "../../../shared/api/living-api.ts";
import type { BuildState, BuildStatus } from "../../../shared/api/worker-api.ts";
import { manifestKey } from "../../../shared/index/keys.ts";
import { fakeWorkerPool } from "../../test/fake-workers.ts";
import { seedIndex } from "../../test/route-harness.ts";
import { freshBucket } from "../../test/s3.ts";
import { newBuildId } from "../builds/routes.ts";
import { softDeleteIndex } from "../db/indexes.ts";
import type { EdgeBindings } from "../env.ts";
import { parseWorkerPool } from "../routing/worker-pool.ts";
import { BUILD_WAIT_MS, type CompactionJob, DESTROY_RESWEEP_MS, DESTROY_RETRY_MS, destroyIndex, ERROR_RETRY_MS, MAINT_KEYS, type MaintenanceContext, POLL_INTERVAL_MS, RETRY_BASE_MS, runMaintenance } from "./maintenance.ts";
import { MAINTENANCE_DEFAULTS } from "./maintenance-settings.ts";
import { pendingBatches, pendingDocs, recordCommitted } from "./writer-state.ts";

const SECRET = (env as unknown as { WORKER_SIGNING_SECRET: string }).WORKER_SIGNING_SECRET;
const WORKERS = parseWorkerPool((env as unknown as { GPU_WORKERS: string }).GPU_WORKERS);
const T0 = Date.parse("2030-01-01T00:00:00.000Z");
const MINUTE = 60_000;

/** A fresh Durable Object's real storage (the RateLimiter class only lends it; it keeps its state in memory). */
function withStorage<T>(fn: (storage: DurableObjectStorage) => Promise<T>): Promise<T> {
  const stub = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(crypto.randomUUID()));
  return runInDurableObject(stub, (_instance, state) => fn(state.storage));
}

/** A format-2 manifest of a compaction: one kept segment with a deletion bitmap, one new tail segment. */
function compactionManifest(tenant: string, index: string, version: number, coveredSeq: number) {
  const v = `v${String(version).padStart(6, "0")}`;
  return {
    format: "hypencoder.index",
    version: 2,
    tenant,
    index,
    indexVersion: version,
    createdAt: new Date(T0).toISOString(),
    model: { id: "a".repeat(64), embeddingDim: 8 },
    dtype: "float16",
    docCount: 5,
    graph: { metric: "l2", degree: 2, builder: "test", reachableFraction: 1 },
    fields: ["text"],
    shards: [
      {
        id: "v000001-s00000",
        key: "versions/v000001/shards/s00000.hxs",
        bytes: 100,
        sha256: "b".repeat(64),
        docStart: 0,
        docCount: 3,
        deletes: { key: `versions/${v}/deletes/v000001-s00000.hxd`, bytes: 8, sha256: "d".repeat(64), count: 1 },
      },
      { id: `${v}-t00000`, key: `versions/${v}/shards/a1/${v}-t00000.hxs`, bytes: 50, sha256: "c".repeat(64), docStart: 3, docCount: 2 },
    ],
    coveredSeq,
  };
}

describe("living index maintenance", () => {
  let client: S3Client;
  let bucket: string;
  let tenant: string;
  let pool: ReturnType<typeof fakeWorkerPool>;
  /** What the fake worker reports for the compaction job, per poll ("lost": it answers 404). */
  let jobState: BuildState | "lost";
  let sweeps: SweepRequest[];
  let compactions: CompactionRequest[];
  let vars: Record<string, string>;

  const status = (request: CompactionRequest, state: BuildState): BuildStatus => ({
    jobId: `c-${request.version}`,
    tenant: request.tenant,
    index: request.index,
    version: request.version,
    state,
    progress: { docsRead: 0, docsEncoded: 0, docsTotal: 0, graphPercent: 0, bytesWritten: 0 },
    ...(state === "failed" ? { error: { code: "compaction_failed", message: "boom" } } : {}),
    startedAt: new Date().toISOString(),
  });

  beforeEach(async () => {
    ({ client, bucket } = await freshBucket());
    ({ tenant } = await seedIndex(env.DB));
    pool = fakeWorkerPool(SECRET);
    jobState = "encoding";
    sweeps = [];
    compactions = [];
    vars = {};
    pool.routes.set("POST /v1/compactions", (call) => {
      compactions.push(call.body as CompactionRequest);
      return Response.json(status(call.body as CompactionRequest, "queued"), { status: 202 });
    });
    pool.routes.set("GET /v1/builds/:id", () =>
      jobState === "lost" ? Response.json({ error: { code: "job_not_found", message: "no such job" } }, { status: 404 }) : Response.json(status(compactions.at(-1)!, jobState)),
    );
    pool.routes.set("POST /v1/sweep", (call) => {
      sweeps.push(call.body as SweepRequest);
      return Response.json({ deletedObjects: 3, keptObjects: 1, ms: 5 });
    });
  });

  const ctxOf = (storage: DurableObjectStorage, now: () => number): MaintenanceContext => ({
    env: { ...env, S3_BUCKET: bucket, ...vars } as unknown as EdgeBindings,
    storage,
    tenant,
    index: "docs",
    fetcher: pool.fetcher,
    now,
  });
  const sql = (query: string, ...params: unknown[]) => env.DB.prepare(query).bind(tenant, ...params).run();
  const versionRow = (v: number) =>
    env.DB.prepare("SELECT state, kind, covered_seq, doc_count, superseded_at, swept_at FROM index_versions WHERE tenant_id = ?1 AND index_id = 'docs' AND version = ?2")
      .bind(tenant, v)
      .first<{ state: string; kind: string; covered_seq: number; doc_count: number; superseded_at: string | null; swept_at: string | null }>();
  const indexRow = () =>
    env.DB.prepare("SELECT active_version, status, doc_count, head_seq, purged_at FROM indexes WHERE tenant_id = ?1 AND id = 'docs'")
      .bind(tenant)
      .first<{ active_version: number | null; status: string; doc_count: number; head_seq: number; purged_at: string | null }>();

  /** Acknowledged writes, as the IndexWriter records them: the ledger entry and head_seq. */
  async function write(storage: DurableObjectStorage, seq: number, upserted: number, at: number): Promise<void> {
    await recordCommitted(storage, seq, upserted, at);
    await sql("UPDATE indexes SET head_seq = MAX(head_seq, ?2) WHERE tenant_id = ?1 AND id = 'docs'", seq);
  }
  /** A version row as a finished build leaves it; `active` flips the index to it. */
  async function readyVersion(version: number, coveredSeq: number, opts: { active?: boolean; supersededAt?: string; kind?: string; state?: string } = {}): Promise<void> {
    await sql(
      `INSERT INTO index_versions (tenant_id, index_id, version, state, kind, covered_seq, shards, superseded_at, created_at)
       VALUES (?1, 'docs', ?2, ?3, ?4, ?5, '[{"id":"s0","bytes":1,"docCount":1}]', ?6, ?7)`,
      version,
      opts.state ?? "ready",
      opts.kind ?? "build",
      coveredSeq,
      opts.supersededAt ?? null,
      new Date().toISOString(),
    );
    if (opts.active) await sql("UPDATE indexes SET active_version = ?2, status = 'ready' WHERE tenant_id = ?1 AND id = 'docs'", version);
  }
  async function buildInProgress(version: number, uploadId: string | null = null): Promise<string> {
    const id = newBuildId();
    await sql("INSERT INTO builds (tenant_id, id, index_id, version, upload_id, worker_job_id, worker_url, state, created_at, updated_at) VALUES (?1, ?2, 'docs', ?3, ?4, 'job-b', ?5, 'encoding', ?6, ?6)", id, version, uploadId, WORKERS[0], new Date().toISOString());
    return id;
  }
  async function upload(id: string, expiresAt: number): Promise<void> {
    await sql("INSERT INTO uploads (tenant_id, id, index_id, files, expires_at, created_at) VALUES (?1, ?2, 'docs', '[]', ?3, ?3)", id, new Date(expiresAt).toISOString());
  }
  const putManifest = (version: number, coveredSeq: number) =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKey(tenant, "docs", version), Body: JSON.stringify(compactionManifest(tenant, "docs", version, coveredSeq)) }));

  describe("compaction trigger", () => {
    it("waits below every threshold and compacts at COMPACT_TAIL_DOCS", () =>
      withStorage(async (storage) => {
        vars = { COMPACT_TAIL_DOCS: "10", COMPACT_TAIL_BATCHES: "5" };
        const ctx = ctxOf(storage, () => T0);
        // No tail: only the sweeper's next look is scheduled.
        expect(await runMaintenance(ctx)).toBe(T0 + MAINTENANCE_DEFAULTS.GC_INTERVAL_SECONDS * 1000);
        await write(storage, 1, 6, T0);
        await write(storage, 2, 3, T0);
        // 9 docs, 2 batches, brand new: the next alarm is when the tail will be old enough.
        expect(await runMaintenance(ctx)).toBe(T0 + MAINTENANCE_DEFAULTS.COMPACT_TAIL_AGE_SECONDS * 1000);
        expect(compactions).toHaveLength(0);
        await write(storage, 3, 1, T0);
        expect(await runMaintenance(ctx)).toBe(T0 + POLL_INTERVAL_MS);
        expect(compactions).toEqual([{ tenant, index: "docs", baseVersion: 0, version: 1, toSeq: 3 }]);
      }));

    it("compacts at COMPACT_TAIL_BATCHES (batches of deletes only count too)", () =>
      withStorage(async (storage) => {
        vars = { COMPACT_TAIL_BATCHES: "3" };
        await write(storage, 1, 0, T0);
        await write(storage, 2, 0, T0);
        await runMaintenance(ctxOf(storage, () => T0));
        expect(compactions).toHaveLength(0);
        await write(storage, 3, 0, T0);
        await runMaintenance(ctxOf(storage, () => T0));
        expect(compactions).toEqual([{ tenant, index: "docs", baseVersion: 0, version: 1, toSeq: 3 }]);
      }));

    it("sends the index's declared fields as filterFields", () =>
      withStorage(async (storage) => {
        const fields = { section: "string", tags: "string[]" };
        await sql("UPDATE indexes SET filter_fields = ?2 WHERE tenant_id = ?1 AND id = 'docs'", JSON.stringify(fields));
        vars = { COMPACT_TAIL_BATCHES: "1" };
        await write(storage, 1, 1, T0);
        await runMaintenance(ctxOf(storage, () => T0));
        expect(compactions).toEqual([{ tenant, index: "docs", baseVersion: 0, version: 1, toSeq: 1, filterFields: fields }]);
      }));

    it("compacts when the oldest pending batch is COMPACT_TAIL_AGE_SECONDS old", () =>
      withStorage(async (storage) => {
        vars = { COMPACT_TAIL_AGE_SECONDS: "60" };
        await write(storage, 1, 1, T0);
        expect(await runMaintenance(ctxOf(storage, () => T0 + 59_999))).toBe(T0 + 60_000);
        expect(compactions).toHaveLength(0);
        await runMaintenance(ctxOf(storage, () => T0 + 60_000));
        expect(compactions).toHaveLength(1);
      }));

    it("a tail that D1 knows of but the writer's ledger does not (lost) still ages into a compaction", () =>
      withStorage(async (storage) => {
        vars = { COMPACT_TAIL_AGE_SECONDS: "60" };
        await sql("UPDATE indexes SET head_seq = 4 WHERE tenant_id = ?1 AND id = 'docs'");
        expect(await runMaintenance(ctxOf(storage, () => T0))).toBe(T0 + 60_000);
        await runMaintenance(ctxOf(storage, () => T0 + 60_000));
        expect(compactions).toEqual([{ tenant, index: "docs", baseVersion: 0, version: 1, toSeq: 4 }]);
      }));

    it("two runs at once (an alarm and an explicit call) dispatch one compaction, not two", () =>
      withStorage(async (storage) => {
        vars = { COMPACT_TAIL_DOCS: "1" };
        await write(storage, 1, 1, T0);
        const ctx = ctxOf(storage, () => T0);
        await Promise.all([runMaintenance(ctx), runMaintenance(ctx)]);
        expect(compactions).toHaveLength(1);
        expect(await versionRow(1)).toMatchObject({ state: "building", kind: "compaction" });
        expect(await versionRow(2)).toBeNull();
      }));

    it("waits while a user build is in progress", () =>
      withStorage(async (storage) => {
        vars = { COMPACT_TAIL_DOCS: "1" };
        await readyVersion(1, 0, { active: true });
        await sql("INSERT INTO index_versions (tenant_id, index_id, version, state, created_at) VALUES (?1, 'docs', 2, 'building', ?2)", new Date().toISOString());
        await buildInProgress(2);
        await write(storage, 1, 5, T0);
        expect(await runMaintenance(ctxOf(storage, () => T0))).toBe(T0 + BUILD_WAIT_MS);
        expect(compactions).toHaveLength(0);
        await sql("UPDATE builds SET state = 'failed' WHERE tenant_id = ?1");
        await sql("UPDATE index_versions SET state = 'failed' WHERE tenant_id = ?1 AND version = 2");
        await runMaintenance(ctxOf(storage, () => T0 + BUILD_WAIT_MS));
        expect(compactions).toEqual([{ tenant, index: "docs", baseVersion: 1, version: 3, toSeq: 1 }]);
      }));
  });

  it("dispatches, polls, reads the manifest, flips, marks the replaced version superseded and recounts the pending tail", () =>
    withStorage(async (storage) => {
      vars = { COMPACT_TAIL_DOCS: "3" };
      await readyVersion(1, 2, { active: true });
      await write(storage, 3, 2, T0);
      await write(storage, 4, 1, T0);
      let now = T0;
      const ctx = ctxOf(storage, () => now);
      expect(await runMaintenance(ctx)).toBe(T0 + POLL_INTERVAL_MS);
      expect(compactions).toEqual([{ tenant, index: "docs", baseVersion: 1, version: 2, toSeq: 4 }]);
      const call = pool.calls.find((c) => c.path === "/v1/compactions")!;
      expect(call.tenant).toBe(tenant);
      expect(await versionRow(2)).toMatchObject({ state: "building", kind: "compaction", covered_seq: 4 });
      expect(await storage.get<CompactionJob>(MAINT_KEYS.job)).toMatchObject({ version: 2, baseVersion: 1, toSeq: 4, jobId: "c-2", worker: call.worker });

      // A write acknowledged while it runs stays pending after the flip.
      await write(storage, 5, 7, T0);
      now = T0 + POLL_INTERVAL_MS;
      expect(await runMaintenance(ctx)).toBe(now + POLL_INTERVAL_MS);
      expect((await indexRow())!.active_version).toBe(1);

      jobState = "succeeded";
      await putManifest(2, 4);
      now += POLL_INTERVAL_MS;
      await runMaintenance(ctx);
      expect(await indexRow()).toMatchObject({ active_version: 2, status: "ready", doc_count: 4 });
      expect(await versionRow(2)).toMatchObject({ state: "ready", kind: "compaction", covered_seq: 4, doc_count: 4, superseded_at: null });
      expect((await versionRow(1))!.superseded_at).not.toBeNull();
      expect(await storage.get(MAINT_KEYS.job)).toBeUndefined();
      expect([await pendingDocs(storage), await pendingBatches(storage)]).toEqual([7, 1]);
      const shards = await env.DB.prepare("SELECT shards FROM index_versions WHERE tenant_id = ?1 AND index_id = 'docs' AND version = 2").bind(tenant).first<{ shards: string }>();
      expect(JSON.parse(shards!.shards).map((s: { id: string }) => s.id)).toEqual(["v000001-s00000", "v000002-t00000"]);
    }));

  it("a compaction whose base is no longer active (a build flipped meanwhile) is discarded, not flipped", () =>
    withStorage(async (storage) => {
      vars = { COMPACT_TAIL_DOCS: "1" };
      await readyVersion(1, 0, { active: true });
      await write(storage, 1, 1, T0);
      await runMaintenance(ctxOf(storage, () => T0));
      expect(compactions.at(-1)).toMatchObject({ baseVersion: 1, version: 2 });
      // A bulk build (version 3) finishes first and flips.
      await readyVersion(3, 1, { active: true });
      jobState = "succeeded";
      await putManifest(2, 1);
      await runMaintenance(ctxOf(storage, () => T0 + POLL_INTERVAL_MS));
      expect((await indexRow())!.active_version).toBe(3);
      expect((await versionRow(2))!.state).toBe("failed");
      expect(await storage.get(MAINT_KEYS.job)).toBeUndefined();
      // Not a failure: no backoff recorded.
      expect(await storage.get(MAINT_KEYS.failures)).toBeUndefined();
    }));

  it("a failed, lost or undispatchable compaction fails its version and retries with exponential backoff", () =>
    withStorage(async (storage) => {
      vars = { COMPACT_TAIL_DOCS: "1" };
      await write(storage, 1, 1, T0);
      let now = T0;
      const ctx = ctxOf(storage, () => now);
      await runMaintenance(ctx);
      jobState = "failed";
      now += POLL_INTERVAL_MS;
      expect(await runMaintenance(ctx)).toBe(now + RETRY_BASE_MS);
      expect((await versionRow(1))!.state).toBe("failed");
      expect(await storage.get(MAINT_KEYS.failures)).toBe(1);

      // Not before the backoff ran out.
      const retryAt = now + RETRY_BASE_MS;
      now = retryAt - 1;
      expect(await runMaintenance(ctx)).toBe(retryAt);
      expect(compactions).toHaveLength(1);
      now = retryAt;
      jobState = "encoding";
      await runMaintenance(ctx);
      expect(compactions.at(-1)).toMatchObject({ version: 2, toSeq: 1 });

      // The worker restarted and forgot the job: the second failure doubles the wait.
      jobState = "lost";
      now += POLL_INTERVAL_MS;
      expect(await runMaintenance(ctx)).toBe(now + 2 * RETRY_BASE_MS);
      expect((await versionRow(2))!.state).toBe("failed");

      // No worker answers the dispatch: failed at once, third backoff.
      for (const w of WORKERS) pool.behaviour.set(new URL(w).origin, "down");
      now += 2 * RETRY_BASE_MS;
      expect(await runMaintenance(ctx)).toBe(now + 4 * RETRY_BASE_MS);
      expect((await versionRow(3))!.state).toBe("failed");
      expect(await storage.get(MAINT_KEYS.job)).toBeUndefined();
    }));

  it("a compaction that reports success without a manifest, or with one covering other seqs, fails instead of flipping", () =>
    withStorage(async (storage) => {
      vars = { COMPACT_TAIL_DOCS: "1" };
      await write(storage, 1, 1, T0);
      let now = T0;
      const ctx = ctxOf(storage, () => now);
      await runMaintenance(ctx);
      jobState = "succeeded";
      now += POLL_INTERVAL_MS;
      await runMaintenance(ctx);
      expect((await versionRow(1))!.state).toBe("failed");
      now += RETRY_BASE_MS;
      jobState = "encoding";
      await runMaintenance(ctx);
      expect(compactions.at(-1)).toMatchObject({ version: 2, toSeq: 1 });
      jobState = "succeeded";
      await putManifest(2, 0);
      now += POLL_INTERVAL_MS;
      await runMaintenance(ctx);
      expect((await versionRow(2))!.state).toBe("failed");
      expect((await indexRow())!.active_version).toBeNull();
    }));

  it("a crash between reserving a version and recording the worker's job fails that version on the next run", () =>
    withStorage(async (storage) => {
      vars = { COMPACT_TAIL_DOCS: "1000" };
      await write(storage, 1, 1, T0);
      // Reserved, never recorded; and recorded, never dispatched.
      await readyVersion(1, 1, { kind: "compaction", state: "building" });
      await readyVersion(2, 1, { kind: "compaction", state: "building" });
      await storage.put(MAINT_KEYS.job, { version: 2, baseVersion: 0, toSeq: 1, reservedAt: T0, lastHeardAt: T0 } satisfies CompactionJob);
      await runMaintenance(ctxOf(storage, () => T0));
      expect((await versionRow(1))!.state).toBe("failed");
      expect((await versionRow(2))!.state).toBe("failed");
      expect(await storage.get(MAINT_KEYS.failures)).toBe(1);
    }));

  it("recounts the writer's pending tail when a build flip moved the active covered_seq", () =>
    withStorage(async (storage) => {
      for (let seq = 1; seq <= 5; seq++) await write(storage, seq, seq, T0);
      await runMaintenance(ctxOf(storage, () => T0));
      expect(await pendingDocs(storage)).toBe(15);
      // The builds route flips to a version covering seq 3; it leaves the DO's counters alone.
      await readyVersion(1, 3, { active: true });
      await runMaintenance(ctxOf(storage, () => T0 + 1));
      expect([await pendingDocs(storage), await pendingBatches(storage)]).toEqual([4 + 5, 2]);
    }));

  it("an unexpected error (D1 down) is logged and retried a minute later, not thrown out of the alarm", () =>
    withStorage(async (storage) => {
      const broken = new Proxy(env.DB, {
        get(target, prop) {
          if (prop === "prepare" || prop === "batch") return () => { throw new Error("D1_ERROR: simulated outage"); };
          const value = Reflect.get(target, prop);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      const ctx = { ...ctxOf(storage, () => T0), env: { ...env, DB: broken } as unknown as EdgeBindings };
      expect(await runMaintenance(ctx)).toBe(T0 + ERROR_RETRY_MS);
      expect(await destroyIndex(ctx)).toBe(T0 + DESTROY_RETRY_MS);
    }));

  describe("garbage collection", () => {
    it("keeps the active version, versions in grace and building ones; sweeps WAL below the oldest kept covered_seq and expired unused uploads", () =>
      withStorage(async (storage) => {
        const now = Date.now();
        const grace = MAINTENANCE_DEFAULTS.GC_GRACE_SECONDS * 1000;
        await readyVersion(1, 2, { supersededAt: new Date(now - 2 * grace).toISOString() });
        await readyVersion(2, 5, { supersededAt: new Date(now - 10 * MINUTE).toISOString() });
        await readyVersion(3, 8, { active: true });
        await readyVersion(4, 9, { state: "building" });
        await readyVersion(5, 0, { state: "failed" });
        await upload("u1", now - 2 * grace - 1_000);
        await upload("u2", now - 2 * grace);
        await upload("u3", now - 10 * MINUTE);
        await buildInProgress(4, "u2");
        const ctx = ctxOf(storage, () => now);
        expect(await runMaintenance(ctx)).toBe(now + MAINTENANCE_DEFAULTS.GC_INTERVAL_SECONDS * 1000);
        expect(sweeps).toHaveLength(1);
        const future = Array.from({ length: 16 }, (_, i) => 6 + i);
        expect(sweeps[0]).toEqual({ tenant, index: "docs", everything: false, keepVersions: [2, 3, 4, ...future], walUpToSeq: 5, uploads: ["u1"], versionsUpTo: 5 });
        expect((await versionRow(1))!.swept_at).not.toBeNull();
        expect((await versionRow(5))!.swept_at).not.toBeNull();
        expect((await versionRow(2))!.swept_at).toBeNull();

        // Before the interval: no look. After it with nothing new: no worker call.
        await runMaintenance(ctxOf(storage, () => now + 1));
        await runMaintenance(ctxOf(storage, () => now + MAINTENANCE_DEFAULTS.GC_INTERVAL_SECONDS * 1000));
        expect(sweeps).toHaveLength(1);

        // The build ends and its upload is no longer read; v2's grace runs out: the next sweep takes both.
        await sql("UPDATE builds SET state = 'failed' WHERE tenant_id = ?1");
        await sql("UPDATE index_versions SET state = 'failed' WHERE tenant_id = ?1 AND version = 4");
        const later = now + 2 * grace;
        await runMaintenance(ctxOf(storage, () => later));
        expect(sweeps[1]).toMatchObject({ keepVersions: [3, ...future], walUpToSeq: 8, uploads: ["u2", "u3"] });
        expect((await versionRow(2))!.swept_at).not.toBeNull();
      }));

    it("never sweeps the WAL above the active version's covered_seq, and sweeps nothing of a never-built index", () =>
      withStorage(async (storage) => {
        await write(storage, 1, 1, T0);
        await runMaintenance(ctxOf(storage, () => T0));
        expect(sweeps).toHaveLength(0);
        await readyVersion(1, 6, { active: true });
        await runMaintenance(ctxOf(storage, () => T0 + MAINTENANCE_DEFAULTS.GC_INTERVAL_SECONDS * 1000));
        expect(sweeps.at(-1)).toMatchObject({ keepVersions: expect.arrayContaining([1]), walUpToSeq: 6 });
      }));

    it("a sweep no worker answers is retried soon, and marks nothing swept", () =>
      withStorage(async (storage) => {
        await readyVersion(1, 0, { state: "failed" });
        for (const w of WORKERS) pool.behaviour.set(new URL(w).origin, "down");
        expect(await runMaintenance(ctxOf(storage, () => T0))).toBe(T0 + 60_000);
        expect((await versionRow(1))!.swept_at).toBeNull();
      }));
  });

  describe("destroyIndex", () => {
    it("cancels the build and compaction in progress, sweeps everything twice 30 s apart (retrying every 5 s), then purges", () =>
      withStorage(async (storage) => {
        vars = { COMPACT_TAIL_DOCS: "1" };
        await readyVersion(1, 0, { active: true });
        await write(storage, 1, 1, T0);
        await runMaintenance(ctxOf(storage, () => T0));
        expect(await storage.get(MAINT_KEYS.job)).toMatchObject({ version: 2 });
        // A build sneaks in (it would wait for compaction to end, but it may start).
        await sql("INSERT INTO index_versions (tenant_id, index_id, version, state, created_at) VALUES (?1, 'docs', 3, 'building', ?2)", new Date().toISOString());
        await upload("u1", T0);
        await upload("u2", T0 + 10 * MINUTE);
        const buildId = await buildInProgress(3, "u1");
        const cancelled: string[] = [];
        for (const id of ["job-b", "c-2"]) pool.routes.set(`POST /v1/builds/${id}/cancel`, () => (cancelled.push(id), Response.json({})));

        await softDeleteIndex(env.DB, tenant, "docs");
        let now = T0 + 1_000;
        const ctx = ctxOf(storage, () => now);
        expect(await destroyIndex(ctx)).toBe(now + DESTROY_RESWEEP_MS);
        expect(cancelled.sort()).toEqual(["c-2", "job-b"]);
        const build = await env.DB.prepare("SELECT state FROM builds WHERE tenant_id = ?1 AND id = ?2").bind(tenant, buildId).first<{ state: string }>();
        expect(build?.state).toBe("cancelled");
        expect((await versionRow(2))!.state).toBe("failed");
        expect(sweeps).toEqual([{ tenant, index: "docs", everything: true, keepVersions: [], walUpToSeq: 0, uploads: ["u1", "u2"] }]);
        // Maintenance of a deleted index does nothing.
        expect(await runMaintenance(ctx)).toBeNull();
        expect(compactions).toHaveLength(1);

        const secondAt = now + DESTROY_RESWEEP_MS;
        now = secondAt - 1;
        expect(await destroyIndex(ctx)).toBe(secondAt);
        expect(sweeps).toHaveLength(1);
        now = secondAt;
        for (const w of WORKERS) pool.behaviour.set(new URL(w).origin, "down");
        expect(await destroyIndex(ctx)).toBe(now + DESTROY_RETRY_MS);
        expect((await indexRow())!.purged_at).toBeNull();
        pool.behaviour.clear();
        now += DESTROY_RETRY_MS;
        expect(await destroyIndex(ctx)).toBeNull();
        expect(sweeps).toHaveLength(2);
        expect(sweeps[1]).toMatchObject({ everything: true, uploads: ["u1", "u2"] });
        expect((await indexRow())!.purged_at).not.toBeNull();
        expect([...(await storage.list({ prefix: "maint:" })).keys()]).toEqual([]);
        // The writer's own keys are not maintenance's to clear.
        expect(await pendingBatches(storage)).toBe(1);
        // Done within the documented bound while a worker answers.
        expect(now - T0).toBeLessThanOrEqual(60_000);
      }));

    it("refuses to sweep everything of an index that is not deleted", () =>
      withStorage(async (storage) => {
        expect(await destroyIndex(ctxOf(storage, () => T0))).toBeNull();
        expect(sweeps).toHaveLength(0);
        expect((await indexRow())!.purged_at).toBeNull();
      }));
  });
});
