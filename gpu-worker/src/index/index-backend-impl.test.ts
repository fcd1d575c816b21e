/**
 * createIndexBackend's wiring: preload, missing store, build delegation. Searching itself is covered
 * by shard-search.test.ts and, on the real runtime and S3, test/index-search.test.ts.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BuildRequest, BuildStatus } from "../../../shared/api/worker-api.ts";
import { versionPrefix } from "../../../shared/index/keys.ts";
import type { HypencoderRuntime } from "../model/runtime/runtime.ts";
import { IndexNotFoundError } from "./search-errors.ts";
import { LocalStore } from "../store/local-store.ts";
import { createIndexBackend } from "./index-backend-impl.ts";
import { writeFixtureIndex } from "../../../test/support/index-fixture.ts";

const MODEL = "c".repeat(64);
/** The backend reads only the model id from the runtime (queries arrive as prepared q-nets). */
const runtime = { manifest: { modelId: MODEL } } as unknown as HypencoderRuntime;

let root: string;
const logged: { level: string; fields: object; message: string }[] = [];
const logger = {
  info: (fields: object, message: string) => void logged.push({ level: "info", fields, message }),
  warn: (fields: object, message: string) => void logged.push({ level: "warn", fields, message }),
  error: (fields: object, message: string) => void logged.push({ level: "error", fields, message }),
} as unknown as Parameters<typeof createIndexBackend>[0]["logger"];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "index-backend-test-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const base = () => ({ runtime, cacheDir: join(root, "cache"), cacheBudgetBytes: 1 << 20, preload: [], logger });

describe("createIndexBackend", () => {
  it("without an index store: nothing is found, builds are refused, preloading is a start-up error", async () => {
    const backend = await createIndexBackend(base());
    await expect(backend.embeddingsById("acme", "docs", 1, ["x"])).rejects.toThrow(IndexNotFoundError);
    expect(() => backend.startBuild({} as BuildRequest)).toThrow(/no index store/);
    expect(backend.getBuild("acme", "job")).toBeUndefined();
    expect(backend.metrics()).toEqual({});
    await backend.close();
    await expect(createIndexBackend({ ...base(), preload: [{ tenant: "acme", index: "docs", version: 1 }] })).rejects.toThrow(
      /preloading acme\/docs@1 needs an index store/,
    );
  });

  it("preloads what it can, logs what it cannot, and keeps going", async () => {
    const store = new LocalStore(join(root, "store"));
    const dim = 4;
    await writeFixtureIndex({
      store,
      prefix: versionPrefix("acme", "docs", 1),
      modelId: MODEL,
      embeddings: Float32Array.from({ length: 5 * dim }, (_, i) => Math.sin(i)),
      dim,
      ids: ["a", "b", "c", "d", "e"],
      degree: 2,
    });
    const backend = await createIndexBackend({
      ...base(),
      storeLocation: store.root,
      preload: [
        { tenant: "acme", index: "docs", version: 1 },
        { tenant: "acme", index: "docs", version: 2 },
      ],
    });
    expect(backend.metrics()).toMatchObject({ indexes_loaded: 1, shards_open: 1, docs_in_memory: 5, cache_budget_bytes: 1 << 20 });
    expect(logged.find((l) => l.level === "error")).toMatchObject({ message: "preloading an index failed", fields: { index: "acme/docs@2" } });
    const got = await backend.embeddingsById("acme", "docs", 1, ["c", "z"]);
    expect(got).toMatchObject({ ids: ["c"], missing: ["z"] });
    await backend.close();
    expect(backend.metrics()).toMatchObject({ indexes_loaded: 0, shards_open: 0 });
  });

  it("delegates builds to the builder", async () => {
    const status = { jobId: "j1", tenant: "acme" } as BuildStatus;
    const calls: string[] = [];
    const backend = await createIndexBackend({
      ...base(),
      store: new LocalStore(join(root, "store-2")),
      builds: {
        start: (request) => (calls.push(`start ${request.index}`), status),
        get: (tenant, jobId) => (calls.push(`get ${tenant} ${jobId}`), status),
        cancel: (tenant, jobId) => (calls.push(`cancel ${tenant} ${jobId}`), status),
        close: async () => void calls.push("close"),
      },
    });
    expect(backend.startBuild({ index: "docs" } as BuildRequest)).toBe(status);
    expect(backend.getBuild("acme", "j1")).toBe(status);
    expect(backend.cancelBuild("acme", "j1")).toBe(status);
    await backend.close();
    expect(calls).toEqual(["start docs", "get acme j1", "cancel acme j1", "close"]);
  });
});
