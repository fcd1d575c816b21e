/**
 * An index's filterable fields: the schema declared at index creation (`POST /v1/indexes`
 * `"fields"`), shown back by `GET /v1/indexes/:id` in the same form, and checked against every
 * document a build or write stores. The edge and the worker import this one file.
 *
 *   {"section": "string", "year": "number", "tags": "string[]", "free": "boolean"}
 *
 * A declared field a document lacks (or holds as JSON null) is "absent"; the filter language's
 * absent-field rule (shared/filter/filter.ts) decides what a condition on it means. Undeclared
 * fields are stored and returned as before, but cannot be filtered on.
 */
import { z } from "zod";

export const FIELD_TYPES = ["string", "number", "boolean", "string[]"] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

/** Field name -> type. Plain object so it round-trips through JSON (D1, manifests, requests). */
export type FieldSchema = Readonly<Record<string, FieldType>>;

export const FIELD_LIMITS = {
  /** Declared fields per index: each is a column per segment and a branch in every compile. */
  maxFields: 64,
  maxNameLength: 64,
} as const;

/**
 * A letter or underscore, then letters, digits, `_`, `-` or `.`: safe in URLs, JSON paths and
 * error messages without quoting surprises, and never `__proto__`-like (no leading punctuation).
 */
export const FIELD_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** `id` is the document id, not a stored field; a field of that name could never be filtered on. */
export const RESERVED_FIELD_NAMES: readonly string[] = ["id"];

/** Why `name` cannot be a declared field, or null when it can. */
export function fieldNameProblem(name: string): string | null {
  if (!FIELD_NAME_PATTERN.test(name)) {
    return `field name ${JSON.stringify(name)} must be 1-${FIELD_LIMITS.maxNameLength} characters matching ${FIELD_NAME_PATTERN.source}`;
  }
  if (name === "__proto__" || name === "constructor" || name === "prototype") return `field name "${name}" is not allowed`;
  if (RESERVED_FIELD_NAMES.includes(name)) return `field name "${name}" is reserved (it is the document id, not a field)`;
  return null;
}

/** The `fields` map of `POST /v1/indexes` (and of the worker's build request): validated names and types, at most 64. */
export const fieldSchemaSchema = z
  .record(z.string(), z.unknown())
  .superRefine((fields, ctx) => {
    const names = Object.keys(fields);
    if (names.length > FIELD_LIMITS.maxFields) {
      ctx.addIssue({ code: "custom", message: `at most ${FIELD_LIMITS.maxFields} fields may be declared, got ${names.length}` });
      return;
    }
    for (const name of names) {
      const problem = fieldNameProblem(name);
      if (problem) ctx.addIssue({ code: "custom", path: [name], message: problem });
      const type = fields[name];
      if (!(FIELD_TYPES as readonly unknown[]).includes(type)) {
        ctx.addIssue({
          code: "custom",
          path: [name],
          message: `field "${name}": type must be one of ${FIELD_TYPES.map((t) => `"${t}"`).join(", ")}, got ${JSON.stringify(type) ?? "nothing"}`,
        });
      }
    }
  })
  .transform((fields) => fields as FieldSchema);

/** A declared field's value in one document, or undefined when it is absent (missing or null). */
export function fieldValue(doc: Readonly<Record<string, unknown>>, name: string): unknown {
  if (!Object.hasOwn(doc, name)) return undefined;
  const value = doc[name];
  return value === null ? undefined : value;
}

/** Whether a present value has the declared type (number: finite float64; string[]: strings only). */
export function valueHasType(value: unknown, type: FieldType): boolean {
  switch (type) {
    case "string":
      return typeof value === "string";
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "boolean":
      return typeof value === "boolean";
    case "string[]":
      return Array.isArray(value) && value.every((v) => typeof v === "string");
  }
}

export interface FieldProblem {
  field: string;
  message: string;
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return value.every((v) => typeof v === "string") ? "an array of strings" : "an array with a non-string element";
  if (typeof value === "number") return Number.isFinite(value) ? "a number" : `the non-finite number ${String(value)}`;
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

const TYPE_WORDS: Record<FieldType, string> = {
  string: "a string",
  number: "a finite number",
  boolean: "a boolean",
  "string[]": "an array of strings",
};

/**
 * The document's declared fields that have the wrong type, each naming the field (empty: the
 * document is fine). Missing or null declared fields are absent, not wrong; undeclared fields
 * are ignored. A write answers 400 with these; a build fails naming the line and these.
 */
export function checkDocumentFields(schema: FieldSchema, doc: Readonly<Record<string, unknown>>): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const [field, type] of Object.entries(schema)) {
    const value = fieldValue(doc, field);
    if (value === undefined || valueHasType(value, type)) continue;
    problems.push({ field, message: `field "${field}" is declared ${type} and must be ${TYPE_WORDS[type]}, got ${describe(value)}` });
  }
  return problems;
}
