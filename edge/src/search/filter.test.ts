/**
 * Search filters at the edge (README "Filters"): validation against the index's declared fields
 * (every error of the filter language is a 400 naming the path and field, and no worker is asked),
 * the parsed filter and the schema sent to every worker, GET/POST JSON/msgpack alike, the canonical
 * form in the result-cache key, and the merged plan in the stats.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { encodeFrame } from "../../../shared/api/frames.ts";
import { TAIL_SHARD_ID } from "../../../shared/api/living-api.ts";
import type { Frame, SearchRequest, SearchStats } from "../../../shared/api/worker-api.ts";
import type { FieldSchema } from "../../../shared/filter/schema.ts";
import { fakeWorkerPool } from "../../test/fake-workers.ts";
import { seedIndex, stubAuth, testApp } from "../../test/route-harness.ts";
import { createIndex, getActiveVersion } from "../db/indexes.ts";
import { createTenant } from "../db/tenants.ts";
import { mergeFilterPlans, mergeStats } from "../routing/merge.ts";
import type { SearchCatalog } from "./catalog.ts";
import { createSearchRoutes } from "./routes.ts";

const SECRET = (env as unknown as { WORKER_SIGNING_SECRET: string }).WORKER_SIGNING_SECRET;
const SHARDS = ["s0", "s1", "s2"];
const FIELDS: FieldSchema = { section: "string", year: "number", tags: "string[]", free: "boolean" };

function setup(options: { fields?: FieldSchema; headSeq?: number } = {}) {
  const pool = fakeWorkerPool(SECRET);
  const fields = options.fields ?? FIELDS;
  const catalog: SearchCatalog = async () => ({
    ok: true,
    active: { version: 2, shards: SHARDS, coveredSeq: 5, headSeq: options.headSeq ?? 5, ...(Object.keys(fields).length > 0 ? { fields } : {}) },
  });
  const app = testApp(createSearchRoutes({ fetcher: pool.fetcher, catalog, auth: stubAuth("acme") }));
  const call = async (path: string, init?: RequestInit) => {
    const ctx = createExecutionContext();
    const response = await app.request(path, init, env, ctx);
    const text = await response.text();
    await waitOnExecutionContext(ctx); // the cache write (waitUntil) has landed
    return { response, text, json: () => JSON.parse(text) };
  };
  const sent = () => pool.calls.filter((c) => c.path === "/v1/search").map((c) => c.body as SearchRequest);
  return { pool, call, sent };
}

const q = () => `query ${crypto.randomUUID()}`;
const post = (body: unknown): RequestInit => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const getPath = (filter: unknown, query = q()) => `/v1/indexes/docs/search?q=${encodeURIComponent(query)}&filter=${encodeURIComponent(JSON.stringify(filter))}`;
const cond = (field: string, op: string, value: unknown) => ({ field, op, value });

/** n nested `not`s around a condition: depth n + 1. */
const nested = (n: number): unknown => (n === 0 ? cond("year", "gt", 2000) : { not: nested(n - 1) });

describe("search filter validation", () => {
  it.each([
    ["an undeclared field (named)", cond("author", "eq", "x"), /filter\.field: field "author" is not declared/],
    ["an undeclared field deep inside", { and: [cond("year", "gt", 1), { or: [cond("nope", "eq", 1)] }] }, /filter\.and\[1\]\.or\[0\]\.field: field "nope" is not declared/],
    ["a string compared as a number", cond("year", "gt", "2000"), /filter\.value: .*"year".*compares numbers/],
    ["a number for a string field", cond("section", "eq", 3), /filter\.value: .*"section".*takes a string/],
    ["gt on a string field", cond("section", "gt", "a"), /filter\.op: op "gt" does not apply to field "section" of type string/],
    ["eq on a string[] field", cond("tags", "eq", "a"), /filter\.op: op "eq" does not apply to field "tags" of type string\[\]/],
    ["contains on a number", cond("year", "contains", 1), /filter\.op: op "contains" does not apply to field "year"/],
    ["in without an array", cond("section", "in", "a"), /filter\.value: op "in" on field "section" takes an array/],
    ["in with a wrong element", cond("year", "in", [1, "2"]), /filter\.value\[1\]: field "year" is number/],
    ["exists with a non-boolean", cond("free", "exists", 1), /filter\.value: op "exists" on field "free" takes true or false/],
    ["an unknown op", cond("year", "between", [1, 2]), /filter\.op: must be one of/],
    ["a missing value", { field: "year", op: "eq" }, /filter\.value: op "eq" on field "year" needs a value/],
    ["an unknown key", { field: "year", op: "eq", value: 1, boost: 2 }, /filter: unknown key "boost"/],
    ["an empty and", { and: [] }, /filter\.and: must hold at least one filter/],
    ["and mixed with other keys", { and: [cond("year", "gt", 1)], or: [] }, /filter: an "and" filter has no other keys/],
    ["a non-object", [cond("year", "gt", 1)], /filter: a filter must be an object/],
    ["null", null, /filter: a filter must be an object/],
    ["nesting 9 levels deep", nested(8), /filters nest at most 8 levels deep/],
    ["65 conditions", { or: Array.from({ length: 65 }, (_, i) => cond("year", "eq", i)) }, /at most 64 conditions/],
    ["1,025 values", { or: [cond("year", "in", Array.from({ length: 1000 }, (_, i) => i)), cond("section", "in", Array.from({ length: 25 }, (_, i) => `s${i}`))] }, /at most 1024 values in all/],
  ])("400 for %s, in POST JSON, GET and msgpack, and no worker is asked", async (_what, filter, message) => {
    const s = setup();
    const answers = [
      await s.call("/v1/indexes/docs/search", post({ query: q(), filter })),
      await s.call(getPath(filter)),
      await s.call("/v1/indexes/docs/search", { method: "POST", headers: { "content-type": "application/msgpack" }, body: encodeFrame({ query: q(), filter } as unknown as Frame) }),
    ];
    for (const { response, json } of answers) {
      expect(response.status).toBe(400);
      expect(json().error.code).toBe("invalid_request");
      expect(json().error.message).toMatch(message);
    }
    expect(s.pool.calls).toEqual([]);
  });

  it("nesting 8 levels, 64 conditions and 1,024 values are allowed", async () => {
    const s = setup();
    const allowed = [
      nested(7),
      { or: Array.from({ length: 64 }, (_, i) => cond("year", "eq", i)) },
      { or: [cond("year", "in", Array.from({ length: 1000 }, (_, i) => i)), cond("section", "in", Array.from({ length: 24 }, (_, i) => `s${i}`))] },
    ];
    for (const filter of allowed) expect((await s.call("/v1/indexes/docs/search", post({ query: q(), filter }))).response.status).toBe(200);
  });

  it("400 for GET filter= that is not JSON, or given twice", async () => {
    const s = setup();
    const bad = await s.call(`/v1/indexes/docs/search?q=x&filter=${encodeURIComponent("{year")}`);
    expect(bad.response.status).toBe(400);
    expect(bad.json().error.message).toBe("filter: must be URL-encoded JSON");
    const twice = await s.call(`/v1/indexes/docs/search?q=x&filter=${encodeURIComponent("{}")}&filter=${encodeURIComponent("{}")}`);
    expect(twice.response.status).toBe(400);
    expect(twice.json().error.message).toMatch(/query\.filter: given more than once/);
  });

  it("an index that declares no fields refuses every filter, naming the field", async () => {
    const s = setup({ fields: {} });
    const { response, json } = await s.call("/v1/indexes/docs/search", post({ query: q(), filter: cond("year", "gt", 1) }));
    expect(response.status).toBe(400);
    expect(json().error.message).toMatch(/field "year" is not declared for filtering \(this index declares no fields\)/);
  });
});

describe("filtered searches reach the workers", () => {
  it("every worker gets the parsed filter and the index's fields (the tail shard's too), in every encoding", async () => {
    const s = setup({ headSeq: 9 });
    const filter = { and: [cond("year", "gte", 2000), { not: cond("tags", "contains", "draft") }, cond("section", "in", ["a", "b"])] };
    expect((await s.call("/v1/indexes/docs/search", post({ query: q(), filter, mode: "exact" }))).response.status).toBe(200);
    expect((await s.call(getPath(filter))).response.status).toBe(200);
    const packed = encodeFrame({ query: q(), filter, stream: true } as unknown as Frame);
    const streamed = await s.call("/v1/indexes/docs/search", { method: "POST", headers: { "content-type": "application/msgpack" }, body: packed });
    expect(streamed.response.status).toBe(200);
    const sent = s.sent();
    // Three searches, each to the workers holding the shards plus the tail.
    expect(sent.flatMap((r) => r.shards!).filter((sh) => sh === TAIL_SHARD_ID)).toHaveLength(3);
    for (const request of sent) {
      expect(request.filter).toEqual(filter);
      expect(request.filterFields).toEqual(FIELDS);
    }
  });

  it("a search without a filter sends neither filter nor filterFields", async () => {
    const s = setup();
    await s.call(`/v1/indexes/docs/search?q=${encodeURIComponent(q())}`);
    for (const request of s.sent()) {
      expect(request).not.toHaveProperty("filter");
      expect(request).not.toHaveProperty("filterFields");
    }
  });

  it("sends only the validated form: keys outside the language never reach a worker", async () => {
    const s = setup();
    const filter = { or: [cond("free", "eq", true), cond("year", "in", [3, 1, 2])] };
    await s.call("/v1/indexes/docs/search", post({ query: q(), filter }));
    expect(s.sent()[0]!.filter).toEqual(filter);
  });
});

describe("filters and the result cache", () => {
  it("two orderings of one and list share one entry; another filter, or none, does not", async () => {
    const s = setup();
    const query = q();
    const a = cond("year", "gte", 2000);
    const b = cond("section", "in", ["x", "y"]);
    const c = cond("free", "eq", true);
    const search = (filter?: unknown) => s.call("/v1/indexes/docs/search", post(filter === undefined ? { query } : { query, filter }));
    expect((await search({ and: [a, b, c] })).response.headers.get("x-cache")).toBe("MISS");
    expect((await search({ and: [c, a, b] })).response.headers.get("x-cache")).toBe("HIT");
    // The same filter through GET, with in-values reordered and nesting flattened: still one entry.
    const regrouped = { and: [{ and: [b, c] }, a] };
    expect((await s.call(getPath(regrouped, query))).response.headers.get("x-cache")).toBe("HIT");
    expect((await search({ and: [a, cond("section", "in", ["y", "x", "x"]), c] })).response.headers.get("x-cache")).toBe("HIT");
    const searches = s.sent().length;
    expect((await search({ or: [a, b, c] })).response.headers.get("x-cache")).toBe("MISS");
    expect((await search({ and: [a, b, cond("free", "eq", false)] })).response.headers.get("x-cache")).toBe("MISS");
    expect((await search()).response.headers.get("x-cache")).toBe("MISS");
    expect(s.sent().length).toBeGreaterThan(searches);
  });
});

describe("the filter plan in the stats", () => {
  const stats = (plan?: string): SearchStats => Object.assign({ docsScored: 1, iterations: 1, shardsSearched: 1, ms: { queue: 0, encode: 0, search: 0, total: 0 } }, plan ? { plan } : {}) as SearchStats;

  it('is "filtered-walk" if any shard walked, else "filtered-exhaustive", and absent without a filter', () => {
    expect(mergeFilterPlans([stats("filtered-exhaustive"), stats("filtered-walk"), stats("filtered-exhaustive")])).toBe("filtered-walk");
    expect(mergeFilterPlans([stats("filtered-exhaustive"), stats("filtered-exhaustive")])).toBe("filtered-exhaustive");
    expect(mergeFilterPlans([stats(), stats()])).toBeUndefined();
    expect(mergeFilterPlans([stats("something-else")])).toBeUndefined();
    expect(mergeStats([stats("filtered-exhaustive"), stats("filtered-walk")], 5)).toMatchObject({ plan: "filtered-walk", docsScored: 2 });
    expect(mergeStats([stats(), stats()], 5)).not.toHaveProperty("plan");
  });
});

describe("the D1 catalog returns the index's fields", () => {
  it("with a ready version and for version 0", async () => {
    const tenant = `t-${crypto.randomUUID().slice(0, 8)}`;
    await createTenant(env.DB, tenant, tenant);
    expect((await createIndex(env.DB, tenant, "typed", FIELDS)).ok).toBe(true);
    await env.DB.prepare("UPDATE indexes SET head_seq = 2 WHERE tenant_id = ?1 AND id = 'typed'").bind(tenant).run();
    expect(await getActiveVersion(env.DB, tenant, "typed")).toEqual({ ok: true, active: { version: 0, shards: [], coveredSeq: 0, headSeq: 2, fields: FIELDS } });
    await env.DB.batch([
      env.DB.prepare("INSERT INTO index_versions (tenant_id, index_id, version, state, shards, covered_seq, created_at) VALUES (?1, 'typed', 1, 'ready', ?2, 2, ?3)").bind(tenant, JSON.stringify([{ id: "s0" }]), new Date().toISOString()),
      env.DB.prepare("UPDATE indexes SET active_version = 1, status = 'ready' WHERE tenant_id = ?1 AND id = 'typed'").bind(tenant),
    ]);
    expect(await getActiveVersion(env.DB, tenant, "typed")).toEqual({ ok: true, active: { version: 1, shards: ["s0"], coveredSeq: 2, headSeq: 2, fields: FIELDS } });
    // An index without declared fields reads as before.
    const { tenant: other } = await seedIndex(env.DB);
    await env.DB.prepare("UPDATE indexes SET head_seq = 1 WHERE tenant_id = ?1 AND id = 'docs'").bind(other).run();
    expect(await getActiveVersion(env.DB, other, "docs")).toEqual({ ok: true, active: { version: 0, shards: [], coveredSeq: 0, headSeq: 1 } });
  });
});
