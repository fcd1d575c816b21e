import { describe, expect, it } from "vitest";
import {
  conditionsOf,
  mutateCondition,
  randomDocument,
  randomFilter,
  randomSchema,
  reorderFilter,
} from "../../test/support/random-filters.ts";
import { seededRandom } from "../random.ts";
import {
  canonicalFilter,
  compareCodePoints,
  type Filter,
  FilterError,
  filterSchemaFor,
  matchesFilter,
  parseFilter,
  parseFilterParam,
} from "./filter.ts";
import type { FieldSchema } from "./schema.ts";

const schema: FieldSchema = { section: "string", year: "number", tags: "string[]", free: "boolean" };
const cond = (field: string, op: string, value: unknown) => ({ field, op, value });

function errorOf(input: unknown, s: FieldSchema = schema): string {
  try {
    parseFilter(input, s);
  } catch (e) {
    expect(e).toBeInstanceOf(FilterError);
    return (e as Error).message;
  }
  throw new Error("expected a FilterError");
}

function nested(depth: number): unknown {
  let f: unknown = cond("year", "gt", 1);
  for (let i = 1; i < depth; i++) f = { not: f };
  return f;
}

describe("parseFilter: accepted filters", () => {
  it("takes every op each type allows and returns a clean copy", () => {
    const input = {
      and: [
        cond("section", "eq", "news"),
        cond("section", "ne", "x"),
        cond("section", "in", ["a", "b"]),
        cond("section", "nin", []),
        cond("year", "gte", 2000),
        cond("year", "lt", 2030.5),
        cond("year", "in", [1, 2]),
        { or: [cond("tags", "contains", "ml"), cond("tags", "in", ["a"]), cond("tags", "nin", ["b"])] },
        { not: cond("free", "eq", true) },
        cond("free", "in", [true, false]),
        cond("free", "exists", false),
      ],
    };
    const parsed = parseFilter(input, schema);
    expect(parsed).toEqual(input);
    expect(parsed).not.toBe(input);
  });

  it("accepts exactly 8 levels, 64 conditions and 1,024 values", () => {
    expect(() => parseFilter(nested(8), schema)).not.toThrow();
    expect(() => parseFilter({ or: Array.from({ length: 64 }, () => cond("year", "eq", 1)) }, schema)).not.toThrow();
    expect(() => parseFilter({ and: [cond("year", "in", Array.from({ length: 1023 }, (_, i) => i)), cond("free", "exists", true)] }, schema)).not.toThrow();
  });
});

describe("parseFilter: every validation error names the path (and field)", () => {
  const cases: [string, unknown, string][] = [
    ["not an object", "year > 3", `filter: a filter must be an object ({"and"}, {"or"}, {"not"} or a condition), got "year > 3"`],
    ["null", null, `filter: a filter must be an object ({"and"}, {"or"}, {"not"} or a condition), got null`],
    ["an array", [cond("year", "eq", 1)], `filter: a filter must be an object ({"and"}, {"or"}, {"not"} or a condition), got [{"field":"year","op":"eq","value":1}]`],
    ["and with other keys", { and: [cond("year", "eq", 1)], or: [] }, `filter: an "and" filter has no other keys, got "and", "or"`],
    ["or with other keys", { or: [cond("year", "eq", 1)], field: "x" }, `filter: an "or" filter has no other keys, got "or", "field"`],
    ["not with other keys", { not: cond("year", "eq", 1), op: "eq" }, `filter: a "not" filter has no other keys, got "not", "op"`],
    ["and not an array", { and: cond("year", "eq", 1) }, `filter.and: must be an array of filters, got {"field":"year","op":"eq","value":1}`],
    ["empty or", { or: [] }, "filter.or: must hold at least one filter"],
    ["bad child", { and: [cond("year", "eq", 1), 7] }, `filter.and[1]: a filter must be an object ({"and"}, {"or"}, {"not"} or a condition), got 7`],
    ["unknown key", { field: "year", op: "eq", value: 1, extra: true }, `filter: unknown key "extra": a filter is {"and"}, {"or"}, {"not"} or {"field", "op", "value"}`],
    ["missing field", { op: "eq", value: 1 }, "filter.field: must be a field name (a non-empty string), got nothing"],
    ["field not a string", cond(3 as never, "eq", 1), "filter.field: must be a field name (a non-empty string), got 3"],
    ["unknown op", cond("year", "between", [1, 2]), "filter.op: must be one of eq, ne, in, nin, gt, gte, lt, lte, contains, exists, got \"between\""],
    ["missing op", { field: "year", value: 1 }, "filter.op: must be one of eq, ne, in, nin, gt, gte, lt, lte, contains, exists, got nothing"],
    ["undeclared field", { not: cond("author", "eq", "x") }, `filter.not.field: field "author" is not declared for filtering (declared: section, year, tags, free)`],
    ["missing value", { field: "year", op: "eq" }, `filter.value: op "eq" on field "year" needs a value`],
    ["range op on a string", cond("section", "gt", "a"), `filter.op: op "gt" does not apply to field "section" of type string; it takes eq, ne, in, nin, exists`],
    ["contains on a string", cond("section", "contains", "a"), `filter.op: op "contains" does not apply to field "section" of type string; it takes eq, ne, in, nin, exists`],
    ["contains on a number", cond("year", "contains", 1), `filter.op: op "contains" does not apply to field "year" of type number; it takes eq, ne, in, nin, gt, gte, lt, lte, exists`],
    ["range op on a boolean", cond("free", "lte", true), `filter.op: op "lte" does not apply to field "free" of type boolean; it takes eq, ne, in, nin, exists`],
    ["eq on string[]", cond("tags", "eq", "a"), `filter.op: op "eq" does not apply to field "tags" of type string[]; it takes contains, in, nin, exists (use contains, or not + contains)`],
    ["number compared with a string", cond("year", "gt", "2000"), `filter.value: op "gt" on field "year" (number) compares numbers, got "2000"`],
    ["string eq with a number", cond("section", "eq", 3), `filter.value: op "eq" on field "section" (string) takes a string, got 3`],
    ["boolean eq with a string", cond("free", "eq", "true"), `filter.value: op "eq" on field "free" (boolean) takes a boolean, got "true"`],
    ["contains with a number", cond("tags", "contains", 1), `filter.value: op "contains" on field "tags" (string[]) takes a string, got 1`],
    ["eq with an array", cond("year", "eq", [1]), `filter.value: op "eq" on field "year" (number) takes a number, got [1]`],
    ["in without an array", cond("section", "in", "a"), `filter.value: op "in" on field "section" takes an array of strings, got "a"`],
    ["nin with a wrong element", cond("year", "nin", [1, "2"]), `filter.value[1]: field "year" is number: "nin" values must be numbers, got "2"`],
    ["in on string[] with numbers", cond("tags", "in", ["a", 1]), `filter.value[1]: field "tags" is string[]: "in" values must be strings, got 1`],
    ["exists with a string", cond("year", "exists", "yes"), `filter.value: op "exists" on field "year" takes true or false, got "yes"`],
    ["deep path", { and: [{ or: [cond("year", "eq", 1), { not: cond("free", "eq", 1) }] }] }, `filter.and[0].or[1].not.value: op "eq" on field "free" (boolean) takes a boolean, got 1`],
    ["too deep", nested(9), "filter.not.not.not.not.not.not.not.not: filters nest at most 8 levels deep"],
    ["too many conditions", { or: Array.from({ length: 65 }, () => cond("year", "eq", 1)) }, "filter.or[64]: a filter holds at most 64 conditions"],
    ["too many values", { and: [cond("year", "in", Array.from({ length: 1024 }, (_, i) => i)), cond("free", "exists", true)] }, "filter.and[1].value: a filter holds at most 1024 values in all"],
  ];
  for (const [what, input, message] of cases) {
    it(what, () => expect(errorOf(input)).toBe(message));
  }

  it("non-finite numbers are refused (msgpack can carry them)", () => {
    expect(errorOf(cond("year", "eq", Number.NaN))).toBe(`filter.value: op "eq" on field "year" (number) takes a number, got NaN`);
    expect(errorOf(cond("year", "in", [Infinity]))).toBe(`filter.value[0]: field "year" is number: "in" values must be numbers, got Infinity`);
  });

  it("an index without fields says so", () => {
    expect(errorOf(cond("year", "eq", 1), {})).toBe(`filter.field: field "year" is not declared for filtering (this index declares no fields)`);
  });

  it("a class instance or prototype trick is not a filter", () => {
    expect(errorOf(new Date())).toContain("a filter must be an object");
    expect(errorOf(JSON.parse(`{"__proto__": {"field": "year"}}`))).toBe(`filter: unknown key "__proto__": a filter is {"and"}, {"or"}, {"not"} or {"field", "op", "value"}`);
  });

  it("filterSchemaFor: the same checks as a zod schema", () => {
    const filterSchema = filterSchemaFor(schema);
    expect(filterSchema.parse(cond("year", "gt", 1))).toEqual(cond("year", "gt", 1));
    const bad = filterSchema.safeParse({ and: [cond("author", "eq", "x")] });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => i.message)).toEqual([`filter.and[0].field: field "author" is not declared for filtering (declared: section, year, tags, free)`]);
  });

  it("GET's filter= text must be JSON", () => {
    expect(parseFilterParam(`{"field":"year","op":"gt","value":2000}`)).toEqual(cond("year", "gt", 2000));
    expect(() => parseFilterParam("{year>2000}")).toThrow("filter: must be URL-encoded JSON");
  });
});

describe("matchesFilter: MongoDB's absent-field rule", () => {
  const absentDocs = [{}, { section: null, year: null, tags: null, free: null }];
  const trueOnAbsent: [string, Filter][] = [
    ["ne", { field: "year", op: "ne", value: 1 }],
    ["nin", { field: "section", op: "nin", value: ["a"] }],
    ["nin []", { field: "tags", op: "nin", value: [] }],
    ["exists false", { field: "free", op: "exists", value: false }],
    ["not eq", { not: { field: "year", op: "eq", value: 1 } }],
    ["not gt", { not: { field: "year", op: "gt", value: 1 } }],
  ];
  const falseOnAbsent: [string, Filter][] = [
    ["eq", { field: "year", op: "eq", value: 0 }],
    ["in", { field: "section", op: "in", value: [""] }],
    ["gt", { field: "year", op: "gt", value: -1e308 }],
    ["gte", { field: "year", op: "gte", value: -1e308 }],
    ["lt", { field: "year", op: "lt", value: 1e308 }],
    ["lte", { field: "year", op: "lte", value: 1e308 }],
    ["contains", { field: "tags", op: "contains", value: "" }],
    ["in on string[]", { field: "tags", op: "in", value: ["a"] }],
    ["exists true", { field: "free", op: "exists", value: true }],
    ["eq false", { field: "free", op: "eq", value: false }],
    ["not ne", { not: { field: "year", op: "ne", value: 1 } }],
  ];
  for (const doc of absentDocs) {
    for (const [what, f] of trueOnAbsent) it(`${what} holds on ${JSON.stringify(doc)}`, () => expect(matchesFilter(f, doc)).toBe(true));
    for (const [what, f] of falseOnAbsent) it(`${what} fails on ${JSON.stringify(doc)}`, () => expect(matchesFilter(f, doc)).toBe(false));
  }

  it("present values", () => {
    const doc = { section: "news", year: 2020, tags: ["ml", "ir"], free: false };
    expect(matchesFilter({ field: "tags", op: "contains", value: "ir" }, doc)).toBe(true);
    expect(matchesFilter({ field: "tags", op: "in", value: ["x", "ml"] }, doc)).toBe(true);
    expect(matchesFilter({ field: "tags", op: "nin", value: ["x", "ml"] }, doc)).toBe(false);
    expect(matchesFilter({ field: "tags", op: "nin", value: ["x"] }, { tags: [] })).toBe(true);
    expect(matchesFilter({ field: "tags", op: "exists", value: true }, { tags: [] })).toBe(true);
    expect(matchesFilter({ field: "year", op: "eq", value: -0 }, { year: 0 })).toBe(true);
    expect(matchesFilter({ and: [{ field: "year", op: "gte", value: 2020 }, { field: "year", op: "lt", value: 2021 }] }, doc)).toBe(true);
    expect(matchesFilter({ or: [{ field: "free", op: "eq", value: true }, { field: "section", op: "ne", value: "news" }] }, doc)).toBe(false);
  });
});

describe("canonicalFilter", () => {
  const a = cond("section", "eq", "news") as Filter;
  const b = cond("year", "gt", 2000) as Filter;
  const c = cond("tags", "in", ["x", "a", "x"]) as Filter;

  it("orderings of and/or lists and in/nin values share one form", () => {
    expect(canonicalFilter({ and: [a, b] })).toBe(canonicalFilter({ and: [b, a] }));
    expect(canonicalFilter({ or: [a, { and: [b, c] }] })).toBe(canonicalFilter({ or: [{ and: [c, b] }, a] }));
    expect(canonicalFilter(c)).toBe(canonicalFilter(cond("tags", "in", ["a", "x"]) as Filter));
    expect(canonicalFilter(c)).toBe(`{"field":"tags","op":"in","value":["a","x"]}`);
  });

  it("flattens, deduplicates, unwraps and removes double negation; -0 is 0", () => {
    expect(canonicalFilter({ and: [a, { and: [b, a] }] })).toBe(canonicalFilter({ and: [a, b] }));
    expect(canonicalFilter({ or: [a] })).toBe(canonicalFilter(a));
    expect(canonicalFilter({ not: { not: a } })).toBe(canonicalFilter(a));
    expect(canonicalFilter(cond("year", "eq", -0) as Filter)).toBe(canonicalFilter(cond("year", "eq", 0) as Filter));
    expect(canonicalFilter(cond("year", "in", [3, -0, 10, 0]) as Filter)).toBe(`{"field":"year","op":"in","value":[0,3,10]}`);
  });

  it("keeps what differs: op, and vs or, not, values", () => {
    const forms = [
      { and: [a, b] },
      { or: [a, b] },
      { not: { and: [a, b] } },
      { and: [{ not: a }, b] },
      cond("year", "gte", 2000),
      cond("year", "gt", 2001),
      cond("year", "gt", "2000"),
      cond("tags", "nin", ["x", "a"]),
    ].map((f) => canonicalFilter(f as Filter));
    expect(new Set(forms).size).toBe(forms.length);
  });

  it("property: stable under reordering, different for a changed condition, equal forms agree on every document", () => {
    const rand = seededRandom(12);
    for (let round = 0; round < 300; round++) {
      const s = randomSchema(rand);
      const f = randomFilter(s, rand, 6);
      expect(() => parseFilter(f, s)).not.toThrow();
      const form = canonicalFilter(f);
      expect(canonicalFilter(reorderFilter(f, rand))).toBe(form);
      expect(canonicalFilter(parseFilter(JSON.parse(form), s))).toBe(form);
      const conditions = conditionsOf(f);
      const changed = mutateCondition(f, Math.floor(rand() * conditions.length), (field) => s[field]!);
      expect(canonicalFilter(changed)).not.toBe(form);
      const canonical = JSON.parse(form) as Filter;
      for (let d = 0; d < 20; d++) {
        const doc = randomDocument(s, rand);
        expect(matchesFilter(canonical, doc)).toBe(matchesFilter(f, doc));
      }
    }
  });
});

describe("compareCodePoints", () => {
  it("orders like UTF-8 bytes, not UTF-16 units", () => {
    const words = ["\u{1F600}", "\uFFFD", "b", "", "a", "ab", "é", "日本"];
    const byBytes = [...words].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect([...words].sort(compareCodePoints)).toEqual(byBytes);
    expect(compareCodePoints("\u{1F600}", "\uFFFD")).toBeGreaterThan(0);
    expect(compareCodePoints("a", "a")).toBe(0);
  });
});
