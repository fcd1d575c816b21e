import { describe, expect, it } from "vitest";
import { searchParamsSchema, VARIANT_DEFAULTS } from "../../../shared/api/worker-api.ts";
import { normaliseQuery, type ResultCacheKeyInput, resultCacheKey } from "./result-cache.ts";

const base: ResultCacheKeyInput = { tenant: "acme", index: "docs", version: 3, query: "hello world", params: searchParamsSchema.parse({}), fields: [], format: "json", consistency: "strong", headSeq: 12 };

describe("result cache keys", () => {
  it("normalises the query with the tokenizer's cleaning: trim, whitespace runs, NFC", async () => {
    expect(normaliseQuery("  a \t\n b  ")).toBe("a b");
    expect(normaliseQuery("cafe\u0301")).toBe("caf\u00e9");
    // The model sees "abcd" and "ab cd": they must not share an entry (shared/text/query-key-text.test.ts
    // checks equal keys ⇒ equal token ids).
    expect(await resultCacheKey({ ...base, query: "ab\ufeffcd" })).not.toBe(await resultCacheKey({ ...base, query: "ab cd" }));
    expect(await resultCacheKey({ ...base, query: "ab\ufeffcd" })).toBe(await resultCacheKey({ ...base, query: "abcd" }));
    expect(await resultCacheKey({ ...base, query: " hello \n world " })).toBe(await resultCacheKey(base));
    expect(await resultCacheKey({ ...base, fields: ["b", "a"] })).toBe(await resultCacheKey({ ...base, fields: ["a", "b"] }));
  });

  it("changes with tenant, index, version, query and every result-affecting option", async () => {
    const variants: ResultCacheKeyInput[] = [
      { ...base, tenant: "globex" },
      { ...base, index: "other" },
      { ...base, version: 4 },
      { ...base, query: "hello worlds" },
      { ...base, fields: ["title"] },
      { ...base, format: "msgpack" },
      { ...base, headSeq: 13 },
      { ...base, headSeq: null },
      { ...base, consistency: "eventual", headSeq: null },
      ...(
        [["k", 11], ["mode", "exact"], ["variant", "published"], ["entryPoints", 5], ["ncandidates", 65], ["maxIter", 17], ["proxySeeds", 3], ["earlyStop", false], ["seed", 1]] as const
      ).map(([name, value]) => ({ ...base, params: { ...base.params, [name]: value } })),
    ];
    const keys = new Set([await resultCacheKey(base), ...(await Promise.all(variants.map(resultCacheKey)))]);
    expect(keys.size).toBe(variants.length + 1);
  });

  it("resolves each variant's defaults first: leaving a walk parameter out and giving its default share an entry", async () => {
    const spelled = { ...base, params: searchParamsSchema.parse({ variant: "proxy", ...VARIANT_DEFAULTS.proxy }) };
    expect(await resultCacheKey(spelled)).toBe(await resultCacheKey(base));
    const published = { ...base, params: searchParamsSchema.parse({ variant: "published" }) };
    expect(await resultCacheKey({ ...base, params: searchParamsSchema.parse({ variant: "published", ...VARIANT_DEFAULTS.published }) })).toBe(await resultCacheKey(published));
    expect(await resultCacheKey(published)).not.toBe(await resultCacheKey(base));
  });

  it("is a synthetic URL that names tenant, index, version and the head seq seen", async () => {
    expect(await resultCacheKey(base)).toMatch(/^https:\/\/search-cache\.hypencoder\.internal\/acme\/docs\/v3\/h12\/[0-9a-f]{64}$/);
    expect(await resultCacheKey({ ...base, consistency: "eventual", headSeq: null })).toMatch(/\/acme\/docs\/v3\/segments\/[0-9a-f]{64}$/);
  });
});
