import { describe, expect, it } from "vitest";
import type { BuildRequest, BuildStatus } from "../../../../shared/api/worker-api.ts";
import type { IndexManifest } from "../../../../shared/index/manifest.ts";
import type { BlobStore } from "../../store/blob-store.ts";
import { BuildManager, describeCompactionFailure, describeFailure } from "./build-manager.ts";
import { BuildConflictError, BuildInputError, BuildQueueFullError } from "./errors.ts";
import type { BuildDeps, runBuild } from "./run-build.ts";
import type { CompactionRequest } from "../../../../shared/api/living-api.ts";
import { IndexFormatError } from "../../../../shared/index/errors.ts";
import { CompactionInputError } from "../compaction/errors.ts";
import type { CompactionDeps, CompactionResult, runCompaction } from "../compaction/run-compaction.ts";

const request = (tenant: string, index: string, version = 1): BuildRequest => ({
  tenant, index, version, inputs: [{ format: "jsonl", key: `tenants/${tenant}/uploads/u/d.jsonl` }],
  degree: 100, entryRows: 256, reverseShare: 0.2, storeFields: ["text"], dtype: "float16", shardBytes: 1 << 20,
});

/** A fake build per request that the test finishes by hand. */
function fakeBuilds() {
  const pending = new Map<string, { deps: BuildDeps; resolve: () => void; reject: (e: unknown) => void }>();
  const started: string[] = [];
  const build: typeof runBuild = (req, deps) =>
    new Promise<IndexManifest>((resolve, reject) => {
      const name = `${req.tenant}/${req.index}`;
      started.push(name);
      deps.signal?.addEventListener("abort", () => reject(deps.signal!.reason));
      pending.set(name, { deps, resolve: () => resolve({ docCount: 1, shards: [], graph: { reachableFraction: 1 } } as unknown as IndexManifest), reject });
    });
  return { build, pending, started };
}

const tick = () => new Promise((r) => setTimeout(r, 0));
const store = {} as BlobStore;
const runtime = { manifest: { modelId: "m".repeat(64), embeddingDim: 4 } } as BuildDeps["runtime"];

/** A fake compaction per request that the test finishes by hand. */
function fakeCompactions() {
  const pending = new Map<string, { deps: CompactionDeps; resolve: () => void; reject: (e: unknown) => void }>();
  const compact: typeof runCompaction = (req, deps) =>
    new Promise<CompactionResult>((resolve, reject) => {
      deps.signal?.addEventListener("abort", () => reject(deps.signal!.reason));
      pending.set(`${req.tenant}/${req.index}`, { deps, resolve: () => resolve({ manifest: { docCount: 3, shards: [] }, stats: {} } as unknown as CompactionResult), reject });
    });
  return { compact, pending };
}
const compaction = (tenant: string, index: string, version = 2): CompactionRequest => ({ tenant, index, baseVersion: version - 1, version, toSeq: 10 });

describe("BuildManager", () => {
  it("runs one build at a time in order, with progress and final states", async () => {
    const fake = fakeBuilds();
    const manager = new BuildManager({ runtime, store, build: fake.build });
    const a = manager.start(request("t1", "a"));
    const b = manager.start(request("t1", "b"));
    expect(a.state).toBe("queued");
    expect(a.jobId).toMatch(/^[0-9a-f-]{36}$/);
    await tick();
    expect(fake.started).toEqual(["t1/a"]);
    expect(manager.active().map((s) => [s.index, s.state])).toEqual([["a", "queued"], ["b", "queued"]]);

    const running = fake.pending.get("t1/a")!;
    expect(running.deps.inputKeyPrefix).toBe("tenants/t1/");
    running.deps.onProgress?.({ state: "encoding", progress: { docsTotal: 10, docsEncoded: 4 } });
    expect(manager.get("t1", a.jobId)).toMatchObject({ state: "encoding", progress: { docsTotal: 10, docsEncoded: 4, docsRead: 0 } });
    running.resolve();
    await tick();
    expect(manager.get("t1", a.jobId)).toMatchObject({ state: "succeeded", finishedAt: expect.any(String) });
    expect(fake.started).toEqual(["t1/a", "t1/b"]);

    fake.pending.get("t1/b")!.reject(new BuildInputError("input x line 3: missing \"id\""));
    await tick();
    expect(manager.get("t1", b.jobId)).toMatchObject({ state: "failed", error: { code: "invalid_input", message: 'input x line 3: missing "id"' } });
    expect(manager.active()).toEqual([]);
  });

  it("refuses a second build of the same tenant/index, and more than maxQueued waiting", async () => {
    const fake = fakeBuilds();
    const manager = new BuildManager({ runtime, store, build: fake.build, maxQueued: 2 });
    manager.start(request("t1", "a"));
    await tick(); // a runs
    expect(() => manager.start(request("t1", "a", 2))).toThrow(BuildConflictError);
    manager.start(request("t2", "a")); // another tenant's index of the same name is fine
    manager.start(request("t1", "b"));
    const full = (() => { try { manager.start(request("t1", "c")); } catch (e) { return e; } })();
    expect(full).toBeInstanceOf(BuildQueueFullError);
    // Its 503 (with Retry-After) is the service's to give: service/errors.test.ts.
  });

  it("never shows one tenant another tenant's job", async () => {
    const manager = new BuildManager({ runtime, store, build: fakeBuilds().build });
    const status = manager.start(request("t1", "a"));
    expect(manager.get("t1", status.jobId)?.jobId).toBe(status.jobId);
    expect(manager.get("t2", status.jobId)).toBeUndefined();
    expect(manager.get("t1", "no-such-job")).toBeUndefined();
  });

  it("returns copies, keeps a bounded number of finished statuses, and hides internal errors", async () => {
    const fake = fakeBuilds();
    const manager = new BuildManager({ runtime, store, build: fake.build, maxFinished: 2 });
    const ids: string[] = [];
    for (const index of ["a", "b", "c"]) {
      ids.push(manager.start(request("t1", index)).jobId);
      await tick();
      fake.pending.get(`t1/${index}`)!.reject(new Error("ENOSPC: /var/lib/secret/path"));
      await tick();
    }
    (manager.get("t1", ids[2]) as BuildStatus).state = "succeeded"; // a copy: no effect
    expect(manager.get("t1", ids[2])).toMatchObject({ state: "failed", error: { code: "internal", message: "internal error while building the index" } });
    manager.start(request("t1", "d")); // pruning happens on start and get
    expect(manager.get("t1", ids[0])).toBeUndefined();
    expect(manager.get("t1", ids[2])).toBeDefined();
  });

  it("cancel() drops a queued job, aborts the running one, leaves finished ones, and is tenant-scoped", async () => {
    const fake = fakeBuilds();
    const manager = new BuildManager({ runtime, store, build: fake.build });
    const running = manager.start(request("t1", "a"));
    const queued = manager.start(request("t1", "b"));
    await tick();
    expect(manager.cancel("t2", running.jobId)).toBeUndefined();
    expect(manager.cancel("t1", queued.jobId)).toMatchObject({ state: "failed", error: { code: "cancelled" } });
    manager.cancel("t1", running.jobId);
    await tick();
    expect(manager.get("t1", running.jobId)).toMatchObject({ state: "failed", error: { code: "cancelled" } });
    // The slot is free again, and the cancelled queued job never ran.
    const next = manager.start(request("t1", "c"));
    await tick();
    expect(fake.started).toEqual(["t1/a", "t1/c"]);
    fake.pending.get("t1/c")!.resolve();
    await tick();
    expect(manager.cancel("t1", next.jobId)).toMatchObject({ state: "succeeded" });
  });

  it("close() aborts the running build and fails the queued ones", async () => {
    const fake = fakeBuilds();
    const manager = new BuildManager({ runtime, store, build: fake.build });
    const a = manager.start(request("t1", "a"));
    const b = manager.start(request("t1", "b"));
    await tick();
    await manager.close();
    expect(manager.get("t1", a.jobId)).toMatchObject({ state: "failed", error: { code: "aborted" } });
    expect(manager.get("t1", b.jobId)).toMatchObject({ state: "failed", error: { code: "aborted" } });
    expect(() => manager.start(request("t1", "c"))).toThrow(/shutting down/);
  });

  it("runs compactions as a second kind of job: one queue, conflicts with builds of the same index, status, progress and cancel", async () => {
    const builds = fakeBuilds();
    const compactions = fakeCompactions();
    const around: string[] = [];
    const manager = new BuildManager({
      runtime,
      store,
      build: builds.build,
      compact: compactions.compact,
      limits: { timeoutMs: 5000 },
      aroundCompaction: async (req, run) => {
        around.push(`acquire ${req.index}@${req.baseVersion}`);
        try {
          return await run();
        } finally {
          around.push(`release ${req.index}@${req.baseVersion}`);
        }
      },
    });
    const build = manager.start(request("t1", "a"));
    const c = manager.startCompaction(compaction("t1", "b"));
    expect(c).toMatchObject({ state: "queued", index: "b", version: 2 });
    expect(() => manager.startCompaction(compaction("t1", "a"))).toThrow(/already has a build/);
    expect(() => manager.start(request("t1", "b"))).toThrow(/already has a compaction/);
    await tick();
    expect(compactions.pending.size).toBe(0); // waits for the build's slot
    builds.pending.get("t1/a")!.resolve();
    await tick();
    const running = compactions.pending.get("t1/b")!;
    expect(running.deps).toMatchObject({ store, model: { modelId: "m".repeat(64), embeddingDim: 4 }, timeoutMs: 5000 });
    running.deps.onProgress?.({ state: "graph", progress: { docsTotal: 3, graphPercent: 50 } });
    expect(manager.get("t1", c.jobId)).toMatchObject({ state: "graph", progress: { docsTotal: 3, graphPercent: 50 } });
    expect(manager.get("t2", c.jobId)).toBeUndefined();
    running.resolve();
    await tick();
    expect(manager.get("t1", c.jobId)).toMatchObject({ state: "succeeded" });
    expect(around).toEqual(["acquire b@1", "release b@1"]);

    const cancelled = manager.startCompaction(compaction("t1", "b", 3));
    await tick();
    expect(manager.cancel("t1", cancelled.jobId)).toBeDefined();
    await tick();
    expect(manager.get("t1", cancelled.jobId)).toMatchObject({ state: "failed", error: { code: "cancelled", message: "the compaction was cancelled" } });
    expect(around.at(-1)).toBe("release b@2");
  });

  it("maps failures to codes a tenant may see", () => {
    expect(describeCompactionFailure(new CompactionInputError("base_not_found", "base version 3 has no manifest"))).toEqual({ code: "base_not_found", message: "base version 3 has no manifest" });
    expect(describeCompactionFailure(new IndexFormatError("tenants/acme/indexes/docs/wal/000000000002.hwal: body CRC-32 mismatch")).code).toBe("corrupt_index");
    expect(describeCompactionFailure(new IndexFormatError("tenants/acme/x")).message).not.toContain("tenants/");
    expect(describeCompactionFailure(new BuildConflictError("version 2 exists")).code).toBe("build_conflict");
    expect(describeCompactionFailure(new Error("ENOSPC /secret"))).toEqual({ code: "internal", message: "internal error while compacting the index" });
    // A build's own format errors are internal (a builder bug), not a corrupt store.
    expect(describeFailure(new IndexFormatError("shard: bad graph")).code).toBe("internal");
    expect(describeFailure(new BuildConflictError("version 2 exists")).code).toBe("build_conflict");
    expect(describeFailure(new DOMException("stop", "AbortError")).code).toBe("aborted");
  });
});
