import { describe, expect, it } from "vitest";
import { checkDocumentFields, FIELD_LIMITS, fieldNameProblem, fieldSchemaSchema, fieldValue } from "./schema.ts";

const issueExample = { section: "string", year: "number", tags: "string[]", free: "boolean" };

function schemaErrors(input: unknown): string[] {
  const result = fieldSchemaSchema.safeParse(input);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("fieldSchemaSchema", () => {
  it("accepts the issue's example and keeps its form", () => {
    expect(fieldSchemaSchema.parse(issueExample)).toEqual(issueExample);
    expect(fieldSchemaSchema.parse({})).toEqual({});
  });

  it("refuses unknown types, naming the field", () => {
    expect(schemaErrors({ year: "int" })).toEqual([`year: field "year": type must be one of "string", "number", "boolean", "string[]", got "int"`]);
    expect(schemaErrors({ tags: ["string"] })).toEqual([`tags: field "tags": type must be one of "string", "number", "boolean", "string[]", got ["string"]`]);
  });

  it("refuses bad and reserved names", () => {
    expect(schemaErrors({ "1st": "string" })[0]).toContain(`field name "1st" must be 1-64 characters matching`);
    expect(schemaErrors({ "a b": "string" })[0]).toContain(`field name "a b"`);
    expect(schemaErrors({ ["x".repeat(65)]: "string" })[0]).toContain("must be 1-64 characters");
    expect(schemaErrors({ id: "string" })).toEqual([`id: field name "id" is reserved (it is the document id, not a field)`]);
    expect(fieldNameProblem("constructor")).toBe(`field name "constructor" is not allowed`);
    expect(fieldNameProblem("meta.lang-2_b")).toBeNull();
    expect(fieldNameProblem("x".repeat(64))).toBeNull();
  });

  it("refuses more than 64 fields", () => {
    const many = Object.fromEntries(Array.from({ length: FIELD_LIMITS.maxFields + 1 }, (_, i) => [`f${i}`, "number"]));
    expect(schemaErrors(many)).toEqual([": at most 64 fields may be declared, got 65"]);
    expect(schemaErrors(Object.fromEntries(Object.entries(many).slice(0, 64)))).toEqual([]);
  });

  it("refuses a non-object", () => {
    expect(fieldSchemaSchema.safeParse(["string"]).success).toBe(false);
    expect(fieldSchemaSchema.safeParse("string").success).toBe(false);
  });
});

describe("checkDocumentFields", () => {
  const schema = fieldSchemaSchema.parse(issueExample);

  it("accepts right types, absent (missing or null) fields and undeclared fields", () => {
    expect(checkDocumentFields(schema, { section: "news", year: 2024.5, tags: [], free: false, other: { x: 1 } })).toEqual([]);
    expect(checkDocumentFields(schema, { year: null })).toEqual([]);
    expect(checkDocumentFields(schema, {})).toEqual([]);
  });

  it("names each wrong field", () => {
    expect(checkDocumentFields(schema, { section: 3, year: "2024", tags: "a", free: 1 })).toEqual([
      { field: "section", message: `field "section" is declared string and must be a string, got a number` },
      { field: "year", message: `field "year" is declared number and must be a finite number, got a string` },
      { field: "tags", message: `field "tags" is declared string[] and must be an array of strings, got a string` },
      { field: "free", message: `field "free" is declared boolean and must be a boolean, got a number` },
    ]);
    expect(checkDocumentFields(schema, { tags: ["a", 2] })[0]!.message).toBe(
      `field "tags" is declared string[] and must be an array of strings, got an array with a non-string element`,
    );
    expect(checkDocumentFields(schema, { year: Number.NaN })[0]!.message).toContain("got the non-finite number NaN");
    expect(checkDocumentFields(schema, { year: Infinity })[0]!.message).toContain("got the non-finite number Infinity");
    expect(checkDocumentFields(schema, { section: { a: 1 } })[0]!.message).toContain("got an object");
  });

  it("reads only own properties", () => {
    const doc = Object.create({ section: 5 }) as Record<string, unknown>;
    expect(fieldValue(doc, "section")).toBeUndefined();
    expect(checkDocumentFields(schema, doc)).toEqual([]);
  });
});
