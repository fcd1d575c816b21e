/**
 * What one index build may consume (gpu-worker/src/index/build/limits.ts), with the real encoder
 * (tiny model) and real stores: a gzip bomb of newlines is refused by its decompression ratio, the
 * wall-time cap fails a slow build, shutdown stops a build reading a flood of blank lines, the
 * document text held at once stays bounded however large one shard is, and a failed build's log
 * names positions and codes but never the input's content.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BuildInput, BuildRequest } from "../shared/api/worker-api.ts";
import { BuildManager } from "../gpu-worker/src/index/build/build-manager.ts";
import { BuildLimitError } from "../gpu-worker/src/index/build/errors.ts";
import { runBuild, type BuildDeps } from "../gpu-worker/src/index/build/run-build.ts";
import { writeTinyCheckpoint } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../gpu-worker/src/model/import-checkpoint.ts";
import { HypencoderRuntime } from "../gpu-worker/src/model/runtime/runtime.ts";
import type { BlobStore } from "../gpu-worker/src/store/blob-store.ts";
import { LocalStore } from "../gpu-worker/src/store/local-store.ts";
import { createLogger } from "../gpu-worker/src/service/logger.ts";

const TENANT = "acme";
const UPLOADS = `tenants/${TENANT}/uploads/u1/`;
const MiB = 2 ** 20;

let root: string;
let runtime: HypencoderRuntime;
let storeCount = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "hypencoder-build-limits-"));
  await writeTinyCheckpoint(join(root, "checkpoint"), { seed: 5 });
  await importCheckpoint(join(root, "checkpoint"), join(root, "model"));
  runtime = await HypencoderRuntime.load(join(root, "model"), { device: "cpu" });
});

afterAll(async () => {
  await runtime?.close();
  await rm(root, { recursive: true, force: true });
});

const freshStore = () => new LocalStore(join(root, `store-${++storeCount}`));
const jsonlInput = (name: string): BuildInput[] => [{ format: "jsonl", key: `${UPLOADS}${name}` }];

function request(inputs: BuildInput[], extra: Partial<BuildRequest> = {}): BuildRequest {
  return { tenant: TENANT, index: "docs", version: 1, inputs, degree: 8, reverseShare: 0.2, entryRows: 0, storeFields: [], dtype: "float16", shardBytes: 256 * MiB, docMaxLength: 32, ...extra };
}

const deps = (store: BlobStore, extra: Partial<BuildDeps> = {}): BuildDeps => ({ runtime, store, inputKeyPrefix: `tenants/${TENANT}/`, onWarning: () => {}, ...extra });

/** `store`, with `key` served by `stream()` instead (inputs too large or too slow to write to disk). */
function withStream(store: BlobStore, key: string, stream: () => Readable): BlobStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === "getStream") return async (k: string) => (k === key ? stream() : target.getStream(k));
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error("the build succeeded"),
    (e: unknown) => e,
  );
}

describe("build limits", () => {
  it("refuses a gzip of newlines by its decompression ratio, long before reading it", async () => {
    // 16 gzip members of 64 MiB of newlines each: 1 GiB decompressed from about 1 MiB.
    const member = gzipSync(Buffer.alloc(64 * MiB, 0x0a), { level: 9 });
    const store = freshStore();
    await store.put(`${UPLOADS}bomb.jsonl.gz`, Buffer.concat(Array.from({ length: 16 }, () => member)));
    const started = performance.now();
    const failure = await failureOf(runBuild(request(jsonlInput("bomb.jsonl.gz")), deps(store)));
    expect(failure).toBeInstanceOf(BuildLimitError);
    expect(failure).toMatchObject({ code: "input_too_large", message: expect.stringContaining("more than 200 times its compressed size") });
    expect(performance.now() - started).toBeLessThan(5_000);
  }, 30_000);

  it("refuses inputs whose decompressed bytes pass the cap, blank lines included", async () => {
    const store = freshStore();
    await store.put(`${UPLOADS}d.jsonl`, Buffer.from(`${JSON.stringify({ id: "a", text: "one document" })}\n${"\n".repeat(4096)}`));
    const failure = await failureOf(runBuild(request(jsonlInput("d.jsonl")), deps(store, { limits: { maxInputBytes: 4000 } })));
    expect(failure).toMatchObject({ code: "input_too_large", message: expect.stringContaining("larger than 4000 bytes") });
  });

  it("fails a build that runs past its time limit with build_timeout", async () => {
    const key = `${UPLOADS}slow.jsonl`;
    const line = Buffer.from(`${JSON.stringify({ id: "x", text: "slow" })}\n`);
    // 1,000 documents, one every 10 ms: about 10 s to read, against a 1 s limit.
    const slowly = () =>
      Readable.from(
        (async function* () {
          for (let i = 0; i < 1000; i++) {
            await new Promise((r) => setTimeout(r, 10));
            yield Buffer.from(line.toString().replace('"x"', `"d${i}"`));
          }
        })(),
      );
    const started = performance.now();
    const failure = await failureOf(runBuild(request(jsonlInput("slow.jsonl")), deps(withStream(freshStore(), key, slowly), { limits: { timeoutMs: 1000 } })));
    expect(failure).toMatchObject({ code: "build_timeout", message: expect.stringContaining("1000 ms") });
    expect(performance.now() - started).toBeLessThan(3_000);
  }, 20_000);

  it("shutdown stops a build that is reading a flood of blank lines", async () => {
    const key = `${UPLOADS}flood.jsonl`;
    const newlines = Buffer.alloc(64 * 1024, 0x0a);
    // Up to 4 GiB of newlines (never a document, so nothing that counts documents ever checks the signal).
    const flood = () =>
      Readable.from(
        (async function* () {
          for (let i = 0; i < 65_536; i++) {
            // A real store's stream waits for I/O now and then, letting timers run.
            if (i % 16 === 0) await new Promise((r) => setImmediate(r));
            yield newlines;
          }
        })(),
      );
    const store = withStream(freshStore(), key, flood);
    const manager = new BuildManager({ runtime, store });
    const { jobId } = manager.start(request(jsonlInput("flood.jsonl")));
    await new Promise((r) => setTimeout(r, 300));
    expect(manager.get(TENANT, jobId)?.state).toBe("reading");
    const started = performance.now();
    await manager.close();
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(manager.get(TENANT, jobId)).toMatchObject({ state: "failed", error: { code: "aborted" } });
  }, 20_000);

  it("holds a bounded amount of document text, however many unstored texts one shard takes", async () => {
    // 96 documents of 1,000,000 characters (96 MB of text), none stored: the planner puts all of
    // them in one shard. Text in flight is capped at 4 MiB, so the heap must stay within 40 MiB of
    // where it started; a build that held the shard's texts would need 96 MB more.
    const TEXT_IN_FLIGHT = 4 * MiB;
    const HEAP_BOUND = 40 * MiB;
    const store = freshStore();
    const words = "graph search query network weight embedding shard index model token vector score ";
    const body = (i: number) => `doc ${i} ${words.repeat(Math.ceil(1_000_000 / words.length))}`.slice(0, 1_000_000);
    const lines: Buffer[] = [];
    for (let i = 0; i < 96; i++) lines.push(Buffer.from(`${JSON.stringify({ id: `d${i}`, text: body(i) })}\n`));
    await store.put(`${UPLOADS}big.jsonl`, Buffer.concat(lines));
    lines.length = 0;

    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    gc();
    const baseline = process.memoryUsage().heapUsed;
    let peak = 0;
    let texts = 0;
    // The real encoder; it only sees the first 32 tokens of each text anyway, so it is given a prefix.
    const measuring: BuildDeps["runtime"] = {
      manifest: runtime.manifest,
      embedDocuments: (batch, options) => {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed - baseline);
        texts += batch.length;
        return runtime.embedDocuments(batch.map((t) => t.slice(0, 2000)), options);
      },
    };
    const manifest = await runBuild(request(jsonlInput("big.jsonl")), { ...deps(store), runtime: measuring, limits: { textBytesInFlight: TEXT_IN_FLIGHT } });
    expect(manifest.shards).toHaveLength(1);
    expect(manifest.docCount).toBe(96);
    expect(texts).toBe(96);
    expect(peak).toBeLessThan(HEAP_BOUND);
  }, 60_000);

  it("logs a failed build's position and code, never the content of its bad line; the tenant's error has the detail", async () => {
    const SECRET_TOKEN = "hyp_live_9f8e7d6c5b4a";
    const store = freshStore();
    const good = JSON.stringify({ id: "a", text: "a fine document" });
    const cases = [
      // JSON.parse quotes the text around the error position.
      { name: "bad.jsonl", body: `${good}\n{"id":"b","text":${SECRET_TOKEN} and more}\n`, where: "line 2: invalid JSON" },
      // A wrongly typed id used to be quoted (40 characters of it) in the message.
      { name: "bad-id.jsonl", body: `${good}\n${JSON.stringify({ id: { token: SECRET_TOKEN }, text: "x" })}\n`, where: 'line 2: "id" must be a string or an integer, got an object' },
      { name: "dup.jsonl", body: `${JSON.stringify({ id: SECRET_TOKEN, text: "x" })}\n${JSON.stringify({ id: SECRET_TOKEN, text: "y" })}\n`, where: "line 2: duplicate id (first on line 1)" },
    ];
    for (const { name, body } of cases) await store.put(`${UPLOADS}${name}`, Buffer.from(body));
    const logs: string[] = [];
    const logger = createLogger({ level: "debug", destination: { write: (line: string) => void logs.push(line) } });
    const manager = new BuildManager({ runtime, store, logger });
    for (const [i, { name, where }] of cases.entries()) {
      const { jobId } = manager.start(request(jsonlInput(name), { index: `bad-${i}` }));
      let status = manager.get(TENANT, jobId);
      for (let tries = 0; status?.state !== "failed" && tries < 200; tries++) {
        await new Promise((r) => setTimeout(r, 25));
        status = manager.get(TENANT, jobId);
      }
      expect(status?.error?.code).toBe("invalid_input");
      expect(status?.error?.message).toContain(where);
      expect(status?.error?.message, name).toContain(SECRET_TOKEN.slice(0, 8));
    }
    await manager.close();
    const failures = logs.map((l) => JSON.parse(l) as { msg: string; code?: string; reason?: string }).filter((l) => l.msg === "index build failed");
    expect(failures).toHaveLength(cases.length);
    for (const [i, entry] of failures.entries()) expect(entry).toMatchObject({ code: "invalid_input", reason: expect.stringContaining(cases[i]!.where) });
    expect(logs.join("\n")).not.toContain(SECRET_TOKEN.slice(0, 8));
  }, 30_000);
});
