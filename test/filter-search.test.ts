/**
 * Metadata filters on the GPU worker, end to end on the tiny model and real S3 (radosgw): builds
 * check declared fields and write filter columns per shard; compaction writes columns for new tail
 * and merged segments and keeps the kept ones'; filtered search over segments (with deletion
 * bitmaps, and one segment without columns) plus a WAL tail returns only matching live documents,
 * and exact mode equals brute force over exactly those (a property test over random schemas,
 * documents and filters); the planner's switch points through real searches; a bad filter is a 400
 * through the worker service.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRequest } from "../shared/api/signing.ts";
import { buildRequestSchema, type SearchParams } from "../shared/api/worker-api.ts";
import { type Filter, matchesFilter } from "../shared/filter/filter.ts";
import type { FieldSchema } from "../shared/filter/schema.ts";
import { decodeDeletionBitmap } from "../shared/index/deletion-bitmap.ts";
import { decodeFilterColumns, rowFieldValues } from "../shared/index/filter-columns.ts";
import { decodeShard } from "../shared/index/format.ts";
import { manifestKey, uploadPrefix, versionPrefix } from "../shared/index/keys.ts";
import { type IndexManifest, manifestKeyBase, parseIndexManifest } from "../shared/index/manifest.ts";
import { halfToFloat32Array } from "../shared/qnet/half.ts";
import type { QNet } from "../shared/qnet/types.ts";
import { runBuild } from "../gpu-worker/src/index/build/run-build.ts";
import { runCompaction } from "../gpu-worker/src/index/compaction/run-compaction.ts";
import { createIndexBackend, type IndexBackendImpl } from "../gpu-worker/src/index/index-backend-impl.ts";
import type { IndexSearchInput } from "../gpu-worker/src/index/index-backend.ts";
import type { FilterPlan } from "../gpu-worker/src/filter/plan.ts";
import { prepareSearchFilter, type SearchFilter } from "../gpu-worker/src/filter/search-filter.ts";
import { declaredFieldValues } from "../gpu-worker/src/filter/segment-columns.ts";
import { writeTinyCheckpoint } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { TINY_VOCAB } from "../gpu-worker/src/model/fixture/vocab.ts";
import { importCheckpoint } from "../gpu-worker/src/model/import-checkpoint.ts";
import { HypencoderRuntime } from "../gpu-worker/src/model/runtime/runtime.ts";
import { seededRandom } from "../gpu-worker/src/search/random.ts";
import { createService } from "../gpu-worker/src/service/app.ts";
import { createLogger } from "../gpu-worker/src/service/logger.ts";
import { nodeChecksums } from "../gpu-worker/src/store/checksums.ts";
import { S3Store } from "../gpu-worker/src/store/s3-store.ts";
import { writeFixtureIndex } from "./support/index-fixture.ts";
import { writeFormat2Version, writeWalFixture } from "./support/living-fixture.ts";
import { randomDocument, randomFilter, randomSchema } from "./support/random-filters.ts";
import { freshBucket, s3TestClient } from "./support/s3.ts";

const TENANT = "acme";
const WORDS = TINY_VOCAB.filter((w) => /^[a-z]{3,}$/.test(w));
const logger = createLogger({ level: "silent" });
const EXACT: SearchParams = { k: 1000, mode: "exact", variant: "published", entryPoints: 8, ncandidates: 4, maxIter: 32, earlyStop: true, seed: 0 };
const APPROX: SearchParams = { k: 10, mode: "approx", variant: "published", entryPoints: 8, ncandidates: 4, maxIter: 32, earlyStop: true, seed: 0 };

let root: string;
let runtime: HypencoderRuntime;
let dim: number;
let modelId: string;
let store: S3Store;
let backend: IndexBackendImpl;
let qnet: QNet;

const textAt = (rand: () => number) => Array.from({ length: 4 + Math.floor(rand() * 6) }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(" ");

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "filter-search-"));
  await writeTinyCheckpoint(join(root, "checkpoint"), { seed: 4 });
  await importCheckpoint(join(root, "checkpoint"), join(root, "model"));
  runtime = await HypencoderRuntime.load(join(root, "model"), { device: "cpu", intraOpThreads: 2 });
  dim = runtime.manifest.embeddingDim;
  modelId = runtime.manifest.modelId;
  [qnet] = await runtime.encodeQueries(["graph search over documents"]);
  store = new S3Store({ client: await s3TestClient(), bucket: await freshBucket("filter-search"), prefix: "store" });
  backend = await createIndexBackend({ runtime, store, cacheDir: join(root, "cache"), cacheBudgetBytes: 1 << 30, preload: [], logger });
}, 240_000);

afterAll(async () => {
  await backend?.close();
  await runtime?.close();
  await rm(root, { recursive: true, force: true });
});

async function search(input: Partial<IndexSearchInput> & { index: string; version: number; filter: SearchFilter }) {
  const prepared = await runtime.prepareQNet(qnet);
  try {
    return await backend.search({ tenant: TENANT, params: EXACT, fields: [], qnet: prepared, signal: new AbortController().signal, ...input });
  } finally {
    await prepared.release();
  }
}

/** A live document as brute force sees it: the vector search scores and the declared fields filters see. */
interface LiveDoc {
  id: string;
  vector: Float32Array;
  fields: Record<string, unknown>;
}

/** Brute force: every live document matching `filter`, scored with the model, best first. */
async function bruteForce(live: readonly LiveDoc[], filter: Filter): Promise<Map<string, number>> {
  const matching = live.filter((d) => matchesFilter(filter, d.fields));
  const rows = new Float32Array(matching.length * dim);
  matching.forEach((d, i) => rows.set(d.vector, i * dim));
  const scores = matching.length > 0 ? await runtime.score(qnet, rows) : new Float32Array(0);
  return new Map(matching.map((d, i) => [d.id, scores[i]!]));
}

function expectSameHits(got: { id: string; score: number }[], expected: Map<string, number>): void {
  expect(got.map((h) => h.id).sort()).toEqual([...expected.keys()].sort());
  for (const h of got) expect(h.score).toBeCloseTo(expected.get(h.id)!, 4);
}

/** Every live row of a stored version with its declared field values read back from the filter columns. */
async function storedRows(index: string, version: number) {
  const manifest = parseIndexManifest(new TextDecoder().decode(await store.get(manifestKey(TENANT, index, version))));
  const base = manifestKeyBase(manifest, versionPrefix(TENANT, index, version));
  const rows = new Map<string, { segment: string; values: Record<string, unknown> | undefined; vector: Float32Array }>();
  for (const s of manifest.shards) {
    const shard = decodeShard(await store.get(base + s.key), { bytes: s.bytes, sha256: s.sha256 }, { checksums: nodeChecksums });
    const columns = shard.filterColumns.length > 0 ? decodeFilterColumns(shard.filterColumns, { expectedRows: s.docCount, ...(manifest.filterFields ? { expectedSchema: manifest.filterFields } : {}) }) : undefined;
    const bitmap = s.deletes ? decodeDeletionBitmap(await store.get(base + s.deletes.key), s.docCount) : undefined;
    shard.ids.forEach((id, r) => {
      if (bitmap?.has(r)) return;
      const e = shard.embeddings.subarray(r * dim, (r + 1) * dim);
      rows.set(id, { segment: s.id, values: columns && rowFieldValues(columns, r), vector: e instanceof Uint16Array ? halfToFloat32Array(e) : e.slice() });
    });
  }
  return { manifest, rows };
}

const BUILD_SCHEMA: FieldSchema = { section: "string", year: "number", tags: "string[]", free: "boolean" };
const SECTIONS = ["news", "sport", "science", "arts"];

function buildDoc(i: number) {
  const rand = seededRandom(1000 + i);
  const doc: Record<string, unknown> = { id: `doc-${i}`, text: textAt(rand), secret: `undeclared ${i}` };
  if (i % 7 !== 0) doc.section = SECTIONS[i % SECTIONS.length];
  if (i % 5 !== 0) doc.year = 1990 + (i % 30);
  doc.tags = i % 3 === 0 ? [] : [`t${i % 4}`, `t${i % 6}`];
  if (i % 11 !== 0) doc.free = i % 2 === 0;
  if (i % 13 === 0) doc.year = null; // null is absent
  return doc;
}
/** The declared fields as the columns give them back: a string[] as its set, in code point order. */
const DECLARED = (doc: Record<string, unknown>) => {
  const values = declaredFieldValues(BUILD_SCHEMA, doc);
  if (Array.isArray(values.tags)) values.tags = [...new Set(values.tags as string[])].sort();
  return values;
};

describe("builds and compaction write filter columns", () => {
  const INDEX = "built";
  const DOCS = Array.from({ length: 400 }, (_, i) => buildDoc(i));
  let v1: IndexManifest;

  beforeAll(async () => {
    const upload = `${uploadPrefix(TENANT, "f1")}docs.jsonl`;
    await store.put(upload, new TextEncoder().encode(DOCS.map((d) => JSON.stringify(d)).join("\n") + "\n"));
    v1 = await runBuild(
      // storeFields leaves the filterable fields out: the columns come from the documents, not the stored fields.
      buildRequestSchema.parse({ tenant: TENANT, index: INDEX, version: 1, inputs: [{ format: "jsonl", key: upload }], degree: 16, entryRows: 8, storeFields: ["text"], dtype: "float16", shardBytes: 1 << 16, docMaxLength: 32, filterFields: BUILD_SCHEMA }),
      { runtime, store, inputKeyPrefix: `tenants/${TENANT}/`, onWarning: () => {} },
    );
  }, 240_000);

  it("a build stores every document's declared fields as its shard's columns and the schema in the manifest", async () => {
    expect(v1.shards.length).toBeGreaterThanOrEqual(2);
    expect(v1.filterFields).toEqual(BUILD_SCHEMA);
    const { rows } = await storedRows(INDEX, 1);
    expect(rows.size).toBe(DOCS.length);
    for (const doc of DOCS) expect(rows.get(doc.id as string)!.values).toEqual(DECLARED(doc));
  });

  it("a wrong type fails the build, naming the input, the line and the field", async () => {
    const upload = `${uploadPrefix(TENANT, "f2")}bad.jsonl`;
    const lines = [buildDoc(1), buildDoc(2), { ...buildDoc(3), year: "2020" }, buildDoc(4)];
    await store.put(upload, new TextEncoder().encode(lines.map((d) => JSON.stringify(d)).join("\n") + "\n"));
    const build = runBuild(
      buildRequestSchema.parse({ tenant: TENANT, index: "bad", version: 1, inputs: [{ format: "jsonl", key: upload }], degree: 4, storeFields: ["text"], filterFields: BUILD_SCHEMA }),
      { runtime, store, inputKeyPrefix: `tenants/${TENANT}/`, onWarning: () => {} },
    );
    await expect(build).rejects.toThrow(`input ${upload} line 3: field "year" is declared number and must be a finite number, got a string`);
    await expect(store.head(manifestKey(TENANT, "bad", 1))).resolves.toBeFalsy();
  });

  it("compaction writes columns for the tail and merged segments from the WAL fields and the source columns; kept segments keep theirs", async () => {
    const last = v1.shards.at(-1)!;
    const lastIds = DOCS.slice(last.docStart, last.docStart + last.docCount).map((d) => d.id as string);
    const doomed = lastIds.slice(0, Math.ceil(lastIds.length * 0.7)); // more than half deleted: the segment is merged
    const fresh = [
      { id: "new-a", fields: { text: "new a", section: "news", year: 2030, tags: ["hot"] } },
      { id: "doc-1", fields: { text: "doc 1 again", section: "arts", free: true } }, // a replace: new fields win
      { id: "new-b", fields: { text: "new b", year: 1991, extra: 1 } },
    ];
    const vectors = await runtime.embedDocuments(fresh.map((d) => d.fields.text));
    await writeWalFixture({ store, tenant: TENANT, index: INDEX, seq: 1, modelId, dim, upsert: fresh.map((d, i) => ({ ...d, embedding: vectors.subarray(i * dim, (i + 1) * dim) })), delete: doomed });
    const result = await runCompaction({ tenant: TENANT, index: INDEX, baseVersion: 1, version: 2, toSeq: 1, degree: 12, filterFields: BUILD_SCHEMA }, { store, model: { modelId, embeddingDim: dim }, onWarning: () => {} });
    expect(result.stats).toMatchObject({ segmentsMerged: 1, tailDocs: 3 });

    const { manifest, rows } = await storedRows(INDEX, 2);
    expect(manifest.filterFields).toEqual(BUILD_SCHEMA);
    const kept = manifest.shards.filter((s) => s.id.startsWith("v000001-"));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.map((s) => s.sha256)).toEqual(v1.shards.slice(0, -1).map((s) => s.sha256)); // the same objects
    for (const doc of DOCS) {
      const id = doc.id as string;
      if (doomed.includes(id) || id === "doc-1") {
        expect(rows.has(id) && rows.get(id)!.segment !== "v000002-t00000").toBe(false);
        continue;
      }
      expect(rows.get(id)!.values, id).toEqual(DECLARED(doc));
    }
    expect(lastIds.filter((id) => !doomed.includes(id)).every((id) => rows.get(id)!.segment === "v000002-m00000")).toBe(true);
    for (const d of fresh) expect(rows.get(d.id)).toMatchObject({ segment: "v000002-t00000", values: DECLARED(d.fields) });

    // And a filtered search of the compacted version is brute force over its matching live rows.
    const live: LiveDoc[] = [...rows].map(([id, r]) => ({ id, vector: r.vector, fields: r.values! }));
    for (const raw of [{ field: "section", op: "eq", value: "arts" }, { field: "year", op: "gte", value: 2000 }, { not: { field: "tags", op: "contains", value: "t1" } }]) {
      const filter = prepareSearchFilter(raw, BUILD_SCHEMA);
      const got = await search({ index: INDEX, version: 2, filter });
      expectSameHits(got.hits, await bruteForce(live, filter.filter));
      expect(got.plan).toBe("filtered-exhaustive");
    }
  }, 240_000);
});

describe("filtered search: a property test over random schemas, documents and filters", () => {
  const N = 150;
  const SHARDS = [60, 50, 40];

  /**
   * Index `p<seed>`: version 1 (three segments; the last written without filter columns, so every
   * declared field is absent there), version 2 = version 1 in format 2 with rows deleted, and a WAL
   * tail after it that adds, replaces and deletes documents.
   */
  async function writeRandomIndex(seed: number) {
    const rand = seededRandom(seed);
    const schema = randomSchema(rand);
    const index = `p${seed}`;
    const docs = Array.from({ length: N }, () => ({ ...randomDocument(schema, rand), text: textAt(rand) }));
    const ids = docs.map((_, i) => `d${i}`);
    const embeddings = await runtime.embedDocuments(docs.map((d) => d.text));
    const v1 = await writeFixtureIndex({ store, prefix: versionPrefix(TENANT, index, 1), tenant: TENANT, index, modelId, embeddings, dim, ids, fields: docs, shardSizes: SHARDS, degree: 8, filterFields: schema, withoutFilterColumns: [2] });
    const deleted = { s0: [1, 7, 30], s1: [0, 49], s2: [5] };
    await writeFormat2Version(store, v1, { from: 1, to: 2, coveredSeq: 0, deletedRows: deleted, tenant: TENANT, index });
    const tailDocs = Array.from({ length: 12 }, (_, i) => ({ id: i < 4 ? `d${i * 17}` : `w${i}`, fields: { ...randomDocument(schema, rand), text: textAt(rand) } }));
    const tailVectors = await runtime.embedDocuments(tailDocs.map((d) => d.fields.text));
    const tailDeletes = ["d3", "d55", "w5", "d140"];
    await writeWalFixture({ store, tenant: TENANT, index, seq: 1, modelId, dim, upsert: tailDocs.slice(0, 8).map((d, i) => ({ ...d, embedding: tailVectors.subarray(i * dim, (i + 1) * dim) })) });
    await writeWalFixture({ store, tenant: TENANT, index, seq: 2, modelId, dim, upsert: tailDocs.slice(8).map((d, i) => ({ ...d, embedding: tailVectors.subarray((i + 8) * dim, (i + 9) * dim) })), delete: tailDeletes });

    // The live documents by hand: segment rows (float16 vectors; no columns in s2), then the tail, newest wins.
    const live = new Map<string, LiveDoc>();
    const dead = new Set(Object.entries(deleted).flatMap(([s, rows]) => rows.map((r) => SHARDS.slice(0, Number(s.slice(1))).reduce((a, b) => a + b, 0) + r)));
    const { rows } = await storedRows(index, 2);
    ids.forEach((id, i) => {
      if (dead.has(i)) return;
      const inLastShard = i >= SHARDS[0]! + SHARDS[1]!;
      live.set(id, { id, vector: rows.get(id)!.vector, fields: inLastShard ? {} : declaredFieldValues(schema, docs[i]!) });
    });
    tailDocs.forEach((d, i) => {
      live.delete(d.id);
      live.set(d.id, { id: d.id, vector: tailVectors.slice(i * dim, (i + 1) * dim), fields: declaredFieldValues(schema, d.fields) });
    });
    for (const id of tailDeletes) live.delete(id);
    return { index, schema, live: [...live.values()], rand };
  }

  for (const seed of [1, 2, 3, 4, 5]) {
    it(`seed ${seed}: every hit matches and is live; exact equals brute force over the matching live documents`, async () => {
      const { index, schema, live, rand } = await writeRandomIndex(seed);
      const liveIds = new Set(live.map((d) => d.id));
      let nonTrivial = 0;
      for (let f = 0; f < 12; f++) {
        const filter = prepareSearchFilter(randomFilter(schema, rand), schema);
        const expected = await bruteForce(live, filter.filter);
        if (expected.size > 0 && expected.size < live.length) nonTrivial++;
        const exact = await search({ index, version: 2, tail: { fromSeq: 0, toSeq: 2 }, filter });
        expectSameHits(exact.hits, expected);
        expect(exact.plan).toBe("filtered-exhaustive");
        // Top 10 of exact: the best of brute force.
        const top = await search({ index, version: 2, tail: { fromSeq: 0, toSeq: 2 }, filter, params: { ...EXACT, k: 10 } });
        const best = [...expected].sort((a, b) => b[1] - a[1]).slice(0, 10);
        expect(top.hits.map((h) => h.score)).toEqual(best.map(([, s]) => expect.closeTo(s, 4)));
        for (const forcePlan of ["filtered-walk", "filtered-exhaustive"] as FilterPlan[]) {
          const approx = await search({ index, version: 2, tail: { fromSeq: 0, toSeq: 2 }, filter: { ...filter, forcePlan }, params: APPROX });
          for (const h of approx.hits) {
            expect(liveIds.has(h.id), `${h.id} is not live`).toBe(true);
            expect(expected.has(h.id), `${h.id} does not match ${filter.key}`).toBe(true);
            expect(h.score).toBeCloseTo(expected.get(h.id)!, 4);
          }
          expect(new Set(approx.hits.map((h) => h.id)).size).toBe(approx.hits.length);
          expect(approx.hits.length).toBe(Math.min(10, expected.size));
          // The tail is always scored exhaustively; a walk on any segment makes the answer "filtered-walk".
          expect(approx.plan).toBe(forcePlan);
        }
      }
      expect(nonTrivial).toBeGreaterThan(0);
    }, 120_000);
  }
});

describe("the planner's switch points through real searches", () => {
  const INDEX = "planned";
  const N = 120;
  const schema: FieldSchema = { bucket: "number" };

  beforeAll(async () => {
    const rand = seededRandom(77);
    const texts = Array.from({ length: N }, () => textAt(rand));
    await writeFixtureIndex({
      store, prefix: versionPrefix(TENANT, INDEX, 1), tenant: TENANT, index: INDEX, modelId, embeddings: await runtime.embedDocuments(texts), dim,
      ids: texts.map((_, i) => `b${i}`), fields: texts.map((text, i) => ({ text, bucket: i })), shardSizes: [60, 60], degree: 8, filterFields: schema,
    });
  }, 120_000);

  /** `m` matching rows in the first segment (bucket < m), none in the second unless m > 60. */
  const planOf = async (m: number, planOptions: SearchFilter["planOptions"], params: Partial<SearchParams> = {}) => {
    const filter = { ...prepareSearchFilter({ field: "bucket", op: "lt", value: m }, schema), ...(planOptions ? { planOptions } : {}) };
    const got = await search({ index: INDEX, version: 1, filter, params: { ...APPROX, ...params } });
    for (const h of got.hits) expect(Number(h.id.slice(1))).toBeLessThan(m);
    return got.plan;
  };

  it("switches at exhaustiveMaxRows, at exhaustiveMaxFraction of the segment, and at the walk's entry set", async () => {
    expect(await planOf(20, { exhaustiveMaxRows: 20, exhaustiveMaxFraction: 0 })).toBe("filtered-exhaustive");
    expect(await planOf(21, { exhaustiveMaxRows: 20, exhaustiveMaxFraction: 0 })).toBe("filtered-walk");
    // 25% of a 60-row segment is 15 rows.
    expect(await planOf(15, { exhaustiveMaxRows: 0, exhaustiveMaxFraction: 0.25 })).toBe("filtered-exhaustive");
    expect(await planOf(16, { exhaustiveMaxRows: 0, exhaustiveMaxFraction: 0.25 })).toBe("filtered-walk");
    // The walk's first frontier would hold every match: exhaustive.
    expect(await planOf(30, { exhaustiveMaxRows: 0, exhaustiveMaxFraction: 0 }, { entryPoints: 30 })).toBe("filtered-exhaustive");
    expect(await planOf(31, { exhaustiveMaxRows: 0, exhaustiveMaxFraction: 0 }, { entryPoints: 30 })).toBe("filtered-walk");
    // The defaults: a 60-row segment is always small enough to score whole.
    expect(await planOf(60, undefined)).toBe("filtered-exhaustive");
    // Exact mode is always the exhaustive plan.
    expect(await planOf(50, { exhaustiveMaxRows: 0, exhaustiveMaxFraction: 0 }, { mode: "exact" })).toBe("filtered-exhaustive");
  });

  it("a filtered walk finds the best match even when no entry row's neighbours match (the early stop waits for matches)", async () => {
    // One matching row per segment: the entry set is that row, and k = 1 must return it.
    const filter = { ...prepareSearchFilter({ field: "bucket", op: "in", value: [7, 100] }, schema), forcePlan: "filtered-walk" as const };
    const got = await search({ index: INDEX, version: 1, filter, params: { ...APPROX, k: 2 } });
    expect(got.hits.map((h) => h.id).sort()).toEqual(["b100", "b7"]);
  });
});

describe("the worker service", () => {
  it("answers a filter on an undeclared field, or of the wrong type, with 400 invalid_filter naming it; a good one with the plan", async () => {
    const SECRET = "filter-secret";
    const service = createService({
      runtime,
      backend,
      logger,
      settings: { signingSecrets: [SECRET], insecureDev: false, queueMax: 8, concurrency: 4, batchMax: 4, batchWaitMs: 1, requestTimeoutMs: 30_000, maxBodyBytes: 1 << 20, maxPendingBodyBytes: 8 << 20, maxAnswerBytes: 4 << 20 },
    });
    const call = async (body: unknown) => {
      const bytes = new TextEncoder().encode(JSON.stringify(body));
      const headers = await signRequest({ secret: SECRET, method: "POST", path: "/v1/search", tenant: TENANT, body: bytes, host: "localhost" });
      return service.app.request("http://localhost/v1/search", { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: bytes });
    };
    const base = { tenant: TENANT, index: "planned", version: 1, query: "graph search", params: { k: 3 }, filterFields: { bucket: "number" } };
    {
      const undeclared = await call({ ...base, filter: { field: "color", op: "eq", value: "red" } });
      expect(undeclared.status).toBe(400);
      expect(await undeclared.json()).toMatchObject({ error: { code: "invalid_filter", message: expect.stringMatching(/^filter\.field: field "color" is not declared/) } });
      const wrongType = await call({ ...base, filter: { and: [{ field: "bucket", op: "eq", value: "7" }] } });
      expect(wrongType.status).toBe(400);
      expect(await wrongType.json()).toMatchObject({ error: { code: "invalid_filter", message: expect.stringContaining("filter.and[0]") } });
      const noSchema = await call({ ...base, filterFields: undefined, filter: { field: "bucket", op: "eq", value: 7 } });
      expect(noSchema.status).toBe(400);
      const good = await call({ ...base, filter: { field: "bucket", op: "lt", value: 5 } });
      expect(good.status).toBe(200);
      const answer = (await good.json()) as { hits: { id: string }[]; stats: { plan?: string } };
      expect(answer.stats.plan).toBe("filtered-exhaustive");
      expect(answer.hits.every((h) => Number(h.id.slice(1)) < 5)).toBe(true);
      const unfiltered = (await (await call(base)).json()) as { stats: { plan?: string } };
      expect(unfiltered.stats.plan).toBeUndefined();
    }
  }, 60_000);
});
