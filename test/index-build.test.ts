/**
 * Index build end to end: documents in a store → runBuild (tiny model, real encoder, real graph
 * builder) → shards and manifest that decode and match what went in. Bad input fails naming the
 * key and line and publishes nothing; an aborted build publishes nothing and a retry succeeds; one
 * round trip goes through real S3 (radosgw); the CLI contract runs as a child process.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BuildInput, BuildRequest, BuildState } from "../shared/api/worker-api.ts";
import { decodeShard, type DecodedShard } from "../shared/index/format.ts";
import { manifestKey, versionPrefix } from "../shared/index/keys.ts";
import { type IndexManifest, parseIndexManifest } from "../shared/index/manifest.ts";
import { float32ArrayToHalf, halfToFloat32Array } from "../shared/qnet/half.ts";
import { BuildConflictError, BuildInputError } from "../gpu-worker/src/index/build/errors.ts";
import { encodeNpyFloat32, encodeNpyHeader } from "../gpu-worker/src/index/build/npy.ts";
import { runBuild, type BuildDeps, type BuildUpdate } from "../gpu-worker/src/index/build/run-build.ts";
import { writeTinyCheckpoint } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../gpu-worker/src/model/import-checkpoint.ts";
import { HypencoderRuntime } from "../gpu-worker/src/model/runtime/runtime.ts";
import type { BlobStore } from "../gpu-worker/src/store/blob-store.ts";
import { nodeChecksums } from "../gpu-worker/src/store/checksums.ts";
import { LocalStore } from "../gpu-worker/src/store/local-store.ts";
import { S3Store } from "../gpu-worker/src/store/s3-store.ts";
import { freshBucket, s3TestClient, s3TestEnv } from "./support/s3.ts";

const BIN = resolve(import.meta.dirname, "../bin/hypencoder.mjs");
const TENANT = "acme";
const UPLOADS = `tenants/${TENANT}/uploads/u1/`;
const DIM = 32; // the tiny model's hidden size
const DOC_MAX_LENGTH = 32;

const WORDS = "graph search query network weight embedding shard index model token vector score".split(" ");
/** ~80-character texts, distinct per document. */
const makeDocs = (n: number, prefix = "doc") =>
  Array.from({ length: n }, (_, i) => ({
    id: prefix === "doc" && i % 7 === 3 ? i + 100_000 : `${prefix}-${i}`, // some integer ids
    text: `${prefix} ${i}: ${Array.from({ length: 12 }, (_, j) => WORDS[(i * 7 + j * (i % 5 + 1)) % WORDS.length]).join(" ")}`,
    title: `title ${i}`,
  }));
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
const bytes = (s: string) => new TextEncoder().encode(s);

let root: string;
let modelDir: string;
let runtime: HypencoderRuntime;
let storeCount = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "hypencoder-index-build-"));
  await writeTinyCheckpoint(join(root, "checkpoint"), { seed: 5 });
  modelDir = join(root, "model");
  await importCheckpoint(join(root, "checkpoint"), modelDir);
  runtime = await HypencoderRuntime.load(modelDir, { device: "cpu" });
});

afterAll(async () => {
  await runtime?.close();
  await rm(root, { recursive: true, force: true });
});

const freshStore = () => new LocalStore(join(root, `store-${++storeCount}`));

function request(inputs: BuildInput[], extra: Partial<BuildRequest> = {}): BuildRequest {
  return { tenant: TENANT, index: "docs", version: 1, inputs, degree: 100, reverseShare: 0.2, entryRows: 256, storeFields: ["text"], dtype: "float16", shardBytes: 1 << 16, docMaxLength: DOC_MAX_LENGTH, ...extra };
}

const deps = (store: BlobStore, extra: Partial<BuildDeps> = {}): BuildDeps => ({
  runtime,
  store,
  inputKeyPrefix: `tenants/${TENANT}/`,
  onWarning: () => {},
  ...extra,
});

async function readIndex(store: BlobStore, req: Pick<BuildRequest, "tenant" | "index" | "version">): Promise<{ manifest: IndexManifest; shards: DecodedShard[] }> {
  const manifest = parseIndexManifest(new TextDecoder().decode(await store.get(manifestKey(req.tenant, req.index, req.version))));
  const prefix = versionPrefix(req.tenant, req.index, req.version);
  const shards = await Promise.all(
    manifest.shards.map(async (s) => decodeShard(await store.get(prefix + s.key), { bytes: s.bytes, sha256: s.sha256 }, { label: s.key, checksums: nodeChecksums })),
  );
  return { manifest, shards };
}

/** Nothing of the version is visible: no manifest, and (leftovers cleaned up) no shards either. */
async function expectNothingPublished(store: BlobStore, version = 1): Promise<void> {
  expect(await store.head(manifestKey(TENANT, "docs", version))).toBeUndefined();
  expect(await store.list(versionPrefix(TENANT, "docs", version))).toEqual([]);
}

const allIds = (shards: DecodedShard[]) => shards.flatMap((s) => s.ids);
const rowOf = (shard: DecodedShard, r: number) => halfToFloat32Array((shard.embeddings as Uint16Array).slice(r * DIM, (r + 1) * DIM));

describe("runBuild", () => {
  it("builds ~300 JSONL documents into 3 size-bounded shards that decode and round-trip", async () => {
    const store = freshStore();
    const docs = makeDocs(300);
    await store.put(`${UPLOADS}docs.jsonl`, bytes(jsonl(docs)));
    const updates: BuildUpdate[] = [];
    const manifest = await runBuild(
      request([{ format: "jsonl", key: `${UPLOADS}docs.jsonl` }], { storeFields: ["text", "title"], entryRows: 12 }),
      deps(store, { onProgress: (u) => updates.push(structuredClone(u)) }),
    );

    const { manifest: stored, shards } = await readIndex(store, { tenant: TENANT, index: "docs", version: 1 });
    expect(stored).toEqual(manifest);
    expect(manifest).toMatchObject({ tenant: TENANT, index: "docs", indexVersion: 1, docCount: 300, dtype: "float16", fields: ["text", "title"] });
    expect(manifest.model).toEqual({ id: runtime.manifest.modelId, embeddingDim: DIM });
    expect(manifest.shards).toHaveLength(3);
    // One folder per build attempt, so concurrent builders of a version never share a key.
    const attempt = /^shards\/([0-9a-f]{8})\/s00000\.hxs$/.exec(manifest.shards[0].key)?.[1];
    expect(attempt).toBeDefined();
    expect(manifest.shards.map((s) => s.key)).toEqual([0, 1, 2].map((i) => `shards/${attempt}/s0000${i}.hxs`));
    for (const s of manifest.shards) expect(s.bytes).toBeLessThanOrEqual(1 << 16);

    // ids (integers as strings) and stored fields, in input order.
    expect(allIds(shards)).toEqual(docs.map((d) => String(d.id)));
    const last = shards[2];
    expect(last.fields(last.docCount - 1)).toEqual({ text: docs[299].text, title: docs[299].title });

    // Graph: degree capped at the largest shard's n - 1; the exact builder fills every row.
    const maxCount = Math.max(...manifest.shards.map((s) => s.docCount));
    expect(manifest.graph).toMatchObject({ metric: "l2", degree: Math.min(100, maxCount - 1), builder: "exact" });
    expect(manifest.graph.reachableFraction).toBeGreaterThan(0.9);
    for (const shard of shards) {
      expect(shard.degree).toBe(manifest.graph.degree);
      for (let r = 0; r < shard.docCount; r++) expect(shard.offsets[r + 1] - shard.offsets[r]).toBe(Math.min(shard.degree, shard.docCount - 1));
    }
    // Row 0's first neighbour is its nearest row in its shard (L2 over the stored values).
    const first = shards[0];
    const dist = (a: number, b: number) => rowOf(first, a).reduce((s, v, k) => s + (v - rowOf(first, b)[k]) ** 2, 0);
    const nearest = Array.from({ length: first.docCount - 1 }, (_, i) => i + 1).reduce((best, r) => (dist(0, r) < dist(0, best) ? r : best));
    expect(dist(0, first.neighbors[first.offsets[0]])).toBeCloseTo(dist(0, nearest), 6);
    // Each shard stores its k-means entry rows for graph search: distinct rows of the shard.
    for (const shard of shards) {
      expect(shard.entryRows.length).toBeGreaterThan(6); // 12 centroids; two may share a medoid
      expect(shard.entryRows.length).toBeLessThanOrEqual(12);
      expect(new Set(shard.entryRows).size).toBe(shard.entryRows.length);
    }

    // Embeddings are the encoder's, rounded to half precision.
    const expected = await runtime.embedDocuments(docs.map((d) => d.text), { maxLength: DOC_MAX_LENGTH });
    const stored16 = halfToFloat32Array(Uint16Array.from(shards.flatMap((s) => Array.from(s.embeddings as Uint16Array))));
    const rounded = halfToFloat32Array(float32ArrayToHalf(expected));
    let worst = 0;
    for (let i = 0; i < rounded.length; i++) worst = Math.max(worst, Math.abs(stored16[i] - rounded[i]) / Math.max(1, Math.abs(rounded[i])));
    expect(worst).toBeLessThan(2e-3); // one half-precision ulp at most (batching noise can flip a rounding)

    // Progress: the states in order, then the final counters.
    const states = updates.flatMap((u) => (u.state ? [u.state] : [])).filter((s, i, a) => s !== a[i - 1]);
    expect(states.slice(0, 5)).toEqual<BuildState[]>(["reading", "encoding", "graph", "writing", "encoding"]);
    const final = Object.assign({}, ...updates.map((u) => u.progress ?? {}));
    expect(final).toMatchObject({ docsRead: 300, docsTotal: 300, docsEncoded: 300, graphPercent: 100 });
    expect(final.bytesWritten).toBeGreaterThan(manifest.shards.reduce((n, s) => n + s.bytes, 0));
  });

  it("reads gzip input, by .gz suffix or by magic bytes, and concatenates inputs in order", async () => {
    const store = freshStore();
    const a = makeDocs(20, "a");
    const b = makeDocs(15, "b");
    await store.put(`${UPLOADS}a.jsonl.gz`, gzipSync(jsonl(a)));
    await store.put(`${UPLOADS}b.data`, gzipSync(jsonl(b)));
    const manifest = await runBuild(
      request([{ format: "jsonl", key: `${UPLOADS}a.jsonl.gz` }, { format: "jsonl", key: `${UPLOADS}b.data` }], { degree: 8 }),
      deps(store),
    );
    const { shards } = await readIndex(store, { tenant: TENANT, index: "docs", version: 1 });
    expect(manifest.docCount).toBe(35);
    expect(manifest.graph.degree).toBe(8);
    expect(allIds(shards)).toEqual([...a, ...b].map((d) => String(d.id)));
  });

  it("takes prebuilt embeddings from .npy + ids JSONL without encoding them, in float32 too", async () => {
    const store = freshStore();
    const n = 40;
    const matrix = Float32Array.from({ length: n * DIM }, (_, i) => Math.sin(i * 0.37) * 3);
    await store.put(`${UPLOADS}emb.npy`, encodeNpyFloat32(matrix, n, DIM));
    const ids = Array.from({ length: n }, (_, i) => ({ id: `e${i}`, title: `t${i}` }));
    // Blank lines are skipped but still counted in line numbers.
    await store.put(`${UPLOADS}ids.jsonl`, bytes(jsonl(ids).replace("\n", "\n\n")));
    const noEncoder = { manifest: runtime.manifest, embedDocuments: () => Promise.reject(new Error("must not encode")) };
    const manifest = await runBuild(
      request([{ format: "npy", key: `${UPLOADS}emb.npy`, idsKey: `${UPLOADS}ids.jsonl` }], { dtype: "float32", storeFields: ["title"], degree: 10 }),
      deps(store, { runtime: noEncoder }),
    );
    const { shards } = await readIndex(store, { tenant: TENANT, index: "docs", version: 1 });
    expect(manifest).toMatchObject({ docCount: n, dtype: "float32", fields: ["title"] });
    expect(allIds(shards)).toEqual(ids.map((d) => d.id));
    expect(shards[0].fields(7)).toEqual({ title: "t7" });
    expect(Array.from(shards[0].embeddings as Float32Array)).toEqual(Array.from(matrix));
  });

  describe("bad input fails naming the key and line, and publishes nothing", () => {
    const npyInput = (rows: number, dim: number, idRows: number, descr = "<f4") => {
      const matrix = new Float32Array(rows * dim).fill(0.5);
      const file = descr === "<f4" ? encodeNpyFloat32(matrix, rows, dim) : new Uint8Array([...encodeNpyHeader(descr, [rows, dim]), ...new Uint8Array(rows * dim * 8)]);
      return {
        files: { "m.npy": file, "ids.jsonl": bytes(jsonl(Array.from({ length: idRows }, (_, i) => ({ id: `r${i}` })))) },
        inputs: [{ format: "npy", key: `${UPLOADS}m.npy`, idsKey: `${UPLOADS}ids.jsonl` }] as BuildInput[],
      };
    };
    const docsFile = (text: string) => ({ files: { "d.jsonl": bytes(text) }, inputs: [{ format: "jsonl", key: `${UPLOADS}d.jsonl` }] as BuildInput[] });
    const ok = (id: string) => JSON.stringify({ id, text: `text of ${id}` });

    const CASES: Array<{ name: string; input: { files: Record<string, Uint8Array>; inputs: BuildInput[] }; error: string }> = [
      { name: "duplicate id (names both lines)", input: docsFile([ok("a"), ok("b"), "", ok("a")].join("\n")), error: `input ${UPLOADS}d.jsonl line 4: duplicate id (first on line 1): id "a"` },
      { name: "empty text", input: docsFile([ok("a"), JSON.stringify({ id: "b", text: "  " })].join("\n")), error: `input ${UPLOADS}d.jsonl line 2: "text" is empty` },
      { name: "over-long text", input: docsFile([ok("a"), JSON.stringify({ id: "b", text: "x".repeat(1_000_001) })].join("\n")), error: `input ${UPLOADS}d.jsonl line 2: "text" is 1000001 characters, over the 1000000 limit` },
      { name: "invalid JSON", input: docsFile([ok("a"), ok("b"), '{"id": "c", text}'].join("\n")), error: `input ${UPLOADS}d.jsonl line 3: invalid JSON` },
      { name: "missing id", input: docsFile([ok("a"), JSON.stringify({ text: "no id" })].join("\n")), error: `input ${UPLOADS}d.jsonl line 2: missing "id"` },
      { name: "missing text", input: docsFile(JSON.stringify({ id: "a" })), error: `input ${UPLOADS}d.jsonl line 1: missing "text"` },
      { name: "wrong embedding dimension", input: npyInput(3, DIM + 1, 3), error: `input ${UPLOADS}m.npy: embedding dimension 33 does not match the model's 32` },
      { name: "wrong npy dtype", input: npyInput(3, DIM, 3, "<f8"), error: `input ${UPLOADS}m.npy: dtype "<f8" is not supported` },
      { name: "fewer ids than rows", input: npyInput(3, DIM, 2), error: `input ${UPLOADS}ids.jsonl: 2 ids, but ${UPLOADS}m.npy has 3 rows` },
      { name: "more ids than rows", input: npyInput(3, DIM, 4), error: `input ${UPLOADS}ids.jsonl line 4: more ids than the 3 rows of ${UPLOADS}m.npy` },
      { name: "a missing input", input: { files: {}, inputs: [{ format: "jsonl", key: `${UPLOADS}nope.jsonl` }] }, error: `input ${UPLOADS}nope.jsonl: not found` },
      { name: "another tenant's input", input: { files: {}, inputs: [{ format: "jsonl", key: "tenants/other/uploads/u/d.jsonl" }] }, error: "not under tenants/acme/" },
      { name: "no documents", input: docsFile("\n\n"), error: "the inputs hold no documents" },
    ];

    for (const { name, input, error } of CASES) {
      it(name, async () => {
        const store = freshStore();
        for (const [file, body] of Object.entries(input.files)) await store.put(UPLOADS + file, body);
        const failure = await runBuild(request(input.inputs, { degree: 4 }), deps(store)).catch((e: unknown) => e);
        expect(failure).toBeInstanceOf(BuildInputError);
        expect((failure as BuildInputError).tenantMessage).toContain(error);
        await expectNothingPublished(store);
      });
    }

    it("a bad row found after the first shard was written (npy NaN) removes that shard", async () => {
      const store = freshStore();
      const n = 300;
      const matrix = new Float32Array(n * DIM).map((_, i) => Math.cos(i));
      matrix[290 * DIM + 5] = Number.NaN;
      await store.put(`${UPLOADS}m.npy`, encodeNpyFloat32(matrix, n, DIM));
      await store.put(`${UPLOADS}ids.jsonl`, bytes(jsonl(Array.from({ length: n }, (_, i) => ({ id: `r${i}`, text: "x".repeat(200) })))));
      let bytesWritten = 0;
      const failure = await runBuild(
        request([{ format: "npy", key: `${UPLOADS}m.npy`, idsKey: `${UPLOADS}ids.jsonl` }]),
        deps(store, { onProgress: (u) => (bytesWritten = u.progress?.bytesWritten ?? bytesWritten) }),
      ).catch((e: unknown) => e);
      expect((failure as Error).message).toBe(`input ${UPLOADS}m.npy: row 290 has a non-finite value (NaN) at column 5`);
      expect(bytesWritten).toBeGreaterThan(0);
      await expectNothingPublished(store);
    });
  });

  it("an aborted build publishes nothing, earlier versions stay intact, and a retry succeeds", async () => {
    const store = freshStore();
    await store.put(`${UPLOADS}docs.jsonl`, bytes(jsonl(makeDocs(300))));
    const input: BuildInput[] = [{ format: "jsonl", key: `${UPLOADS}docs.jsonl` }];
    await runBuild(request(input, { version: 1, degree: 16 }), deps(store));
    const v1Before = await store.list(versionPrefix(TENANT, "docs", 1));

    const controller = new AbortController();
    const aborted = await runBuild(request(input, { version: 2, degree: 16 }), deps(store, {
      signal: controller.signal,
      onProgress: (u) => {
        if ((u.progress?.bytesWritten ?? 0) > 0) controller.abort();
      },
    })).catch((e: unknown) => e);
    expect((aborted as Error).name).toBe("AbortError");
    await expectNothingPublished(store, 2);
    expect(await store.list(versionPrefix(TENANT, "docs", 1))).toEqual(v1Before);

    // A killed worker leaves shard objects but no manifest: the retry publishes, then deletes them.
    const v2 = versionPrefix(TENANT, "docs", 2);
    await store.put(`${v2}shards/deadbeef/s00000.hxs`, bytes("leftover of a killed build"));
    const manifest = await runBuild(request(input, { version: 2, degree: 16 }), deps(store));
    const { shards } = await readIndex(store, { tenant: TENANT, index: "docs", version: 2 });
    expect(manifest.docCount).toBe(300);
    expect(shards.reduce((n, s) => n + s.docCount, 0)).toBe(300);
    expect(await store.list(v2)).toEqual([`${v2}manifest.json`, ...manifest.shards.map((s) => `${v2}${s.key}`)].sort());

    // A published version is never rebuilt over.
    const conflict = await runBuild(request(input, { version: 2, degree: 16 }), deps(store)).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(BuildConflictError);
    expect((await readIndex(store, { tenant: TENANT, index: "docs", version: 2 })).manifest).toEqual(manifest);
  });

  it("of two concurrent builds of one version on real S3, exactly one publishes and the other leaves nothing", async () => {
    await s3TestEnv();
    const bucket = await freshBucket("index-build-race");
    const store = new S3Store({ client: await s3TestClient(), bucket, prefix: "store" });
    await store.put(`${UPLOADS}docs.jsonl`, bytes(jsonl(makeDocs(200))));
    const input: BuildInput[] = [{ format: "jsonl", key: `${UPLOADS}docs.jsonl` }];
    // Both builders' manifest checks see no manifest, as when both checked before either
    // published: only the manifest put's If-None-Match can decide. (Different degrees make the
    // two indexes distinguishable.)
    const blind: BlobStore = Object.assign(Object.create(store) as BlobStore, {
      head: async (key: string) => (key.endsWith("/manifest.json") ? undefined : store.head(key)),
    });
    const outcomes = await Promise.allSettled([8, 12].map((degree) => runBuild(request(input, { degree }), deps(blind))));
    const won = outcomes.filter((o): o is PromiseFulfilledResult<IndexManifest> => o.status === "fulfilled");
    const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0].reason).toBeInstanceOf(BuildConflictError);
    // What is published is the winner's index, whole: every shard verifies against its manifest.
    const { manifest, shards } = await readIndex(store, { tenant: TENANT, index: "docs", version: 1 });
    expect(manifest).toEqual(won[0].value);
    expect(allIds(shards)).toHaveLength(200);
    const v1 = versionPrefix(TENANT, "docs", 1);
    expect(await store.list(v1)).toEqual([`${v1}manifest.json`, ...manifest.shards.map((s) => `${v1}${s.key}`)].sort());
  });

  it("round-trips through real S3", async () => {
    await s3TestEnv();
    const bucket = await freshBucket("index-build");
    const store = new S3Store({ client: await s3TestClient(), bucket, prefix: "store" });
    const docs = makeDocs(60);
    await store.put(`${UPLOADS}docs.jsonl.gz`, gzipSync(jsonl(docs)));
    const manifest = await runBuild(request([{ format: "jsonl", key: `${UPLOADS}docs.jsonl.gz` }], { degree: 12, shardBytes: 1 << 16 }), deps(store));
    const { shards } = await readIndex(store, { tenant: TENANT, index: "docs", version: 1 });
    expect(manifest.docCount).toBe(60);
    expect(allIds(shards)).toEqual(docs.map((d) => String(d.id)));
    expect(shards[0].fields(0)).toEqual({ text: docs[0].text });
  });
});

describe("hypencoder index build (CLI)", () => {
  const run = promisify(execFile);
  async function hypencoder(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { maxBuffer: 16 << 20 });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it("writes manifest.json + shards/ into --out and prints a one-line JSON summary; errors are one line", async () => {
    const docsPath = join(root, "cli-docs.jsonl");
    const docs = makeDocs(50);
    await writeFile(docsPath, jsonl(docs));
    const out = join(root, "cli-index");
    const built = await hypencoder("index", "build", "--model", modelDir, "--docs", docsPath, "--out", out, "--degree", "8", "--doc-max-length", "32", "--fields", "text,title");
    expect(built.code, built.stderr).toBe(0);
    const lines = built.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]);
    expect(Object.keys(summary)).toEqual(["docs", "shards", "bytes", "reachableFraction", "ms"]);
    expect(summary).toMatchObject({ docs: 50, shards: 1 });
    expect(built.stderr).toMatch(/encoding documents: 50\/50/);

    const manifest = parseIndexManifest(await readFile(join(out, "manifest.json"), "utf8"));
    expect(manifest).toMatchObject({ tenant: "local", index: "default", indexVersion: 1, docCount: 50, fields: ["text", "title"], graph: { degree: 8 } });
    const [attempt] = await readdir(join(out, "shards"));
    expect(await readdir(join(out, "shards", attempt!))).toEqual(["s00000.hxs"]);
    const shard = decodeShard(await readFile(join(out, manifest.shards[0].key)), manifest.shards[0]);
    expect(shard.ids).toEqual(docs.map((d) => String(d.id)));
    expect(summary.bytes).toBe(manifest.shards[0].bytes);

    // Building into an existing index is refused; bad input names the file and line.
    const again = await hypencoder("index", "build", "--model", modelDir, "--docs", docsPath, "--out", out);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(`hypencoder index: ${out} already holds an index (manifest.json); build into an empty --out`);
    const badPath = join(root, "cli-bad.jsonl");
    await writeFile(badPath, '{"id":"a","text":"fine"}\n{"id":"a","text":"again"}\n');
    const bad = await hypencoder("index", "build", "--model", modelDir, "--docs", badPath, "--out", join(root, "cli-bad-index"));
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe("");
    expect(bad.stderr.trim()).toBe('hypencoder index: input cli-bad.jsonl line 2: duplicate id (first on line 1): id "a"');
    const usage = await hypencoder("index", "build", "--model", modelDir, "--docs", docsPath, "--out", out, "--dtype", "int8");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^hypencoder index: --dtype: /);
  }, 60_000);
});
