/**
 * The search filter language (issue 12), its validation against an index's field schema, its
 * canonical form (part of the result-cache key) and a reference evaluator over one document.
 *
 *   filter    := {"and": [filter, ...]} | {"or": [filter, ...]} | {"not": filter} | condition
 *   condition := {"field": NAME, "op": OP, "value": V}
 *   OP        := eq | ne | in | nin | gt | gte | lt | lte | contains | exists
 *
 * Which ops a field type takes (anything else is a 400 naming the path, field and type):
 *   string    eq ne (a string)      in nin (an array of strings)                    exists
 *   number    eq ne gt gte lt lte (a finite number)   in nin (an array of numbers)  exists
 *   boolean   eq ne (a boolean)     in nin (an array of booleans)                   exists
 *   string[]  contains (a string: the array holds it)
 *             in (an array of strings: the array holds one of them), nin (holds none)  exists
 * `exists` takes true or false. A condition on an absent field (missing or null) is false,
 * except `ne`, `nin` and `exists: false`, which are true (MongoDB's rule); `not` negates the
 * whole result, so {"not": {"field": "year", "op": "gt", "value": 2000}} holds for an absent year.
 *
 * Limits: nesting at most 8 levels (the root is level 1; each and/or/not puts its children one
 * level deeper), at most 64 conditions and 1,024 values in all (a scalar value or `exists`
 * counts 1, an in/nin array its length). and/or lists hold at least one filter.
 */
import { z } from "zod";
import { type FieldSchema, type FieldType, fieldValue } from "./schema.ts";

export const FILTER_OPS = ["eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "contains", "exists"] as const;
export type FilterOp = (typeof FILTER_OPS)[number];

export type FilterScalar = string | number | boolean;

export interface FilterCondition {
  field: string;
  op: FilterOp;
  value: FilterScalar | FilterScalar[];
}
export type Filter = { and: Filter[] } | { or: Filter[] } | { not: Filter } | FilterCondition;

export const FILTER_LIMITS = {
  maxDepth: 8,
  maxConditions: 64,
  maxValues: 1_024,
} as const;

/** Ops each field type accepts. */
export const OPS_BY_TYPE: Readonly<Record<FieldType, readonly FilterOp[]>> = {
  string: ["eq", "ne", "in", "nin", "exists"],
  number: ["eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "exists"],
  boolean: ["eq", "ne", "in", "nin", "exists"],
  "string[]": ["contains", "in", "nin", "exists"],
};

/** An invalid filter: a 400. `path` locates the node ("filter.and[1].not"); the message starts with it. */
export class FilterError extends Error {
  override name = "FilterError";
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`${path}: ${problem}`);
  }
}

const LIST_OPS = new Set<FilterOp>(["in", "nin"]);
const RANGE_OPS = new Set<FilterOp>(["gt", "gte", "lt", "lte"]);
const CONDITION_KEYS = ["field", "op", "value"];

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function show(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  const json = JSON.stringify(value);
  if (json === undefined) return typeof value;
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

/** Scalar type names as the messages say them. */
function scalarKind(type: FieldType): "string" | "number" | "boolean" {
  return type === "string[]" ? "string" : type;
}

function hasScalarKind(value: unknown, kind: "string" | "number" | "boolean"): boolean {
  return kind === "number" ? typeof value === "number" && Number.isFinite(value) : typeof value === kind;
}

interface Budget {
  conditions: number;
  values: number;
}

/**
 * Parses and validates `input` as a filter over `schema`: structure, limits, declared fields,
 * ops and value types. Returns a fresh Filter (only the known keys, arrays copied); throws
 * FilterError naming the path, and the field where there is one. `root` names the top (the
 * request key).
 */
export function parseFilter(input: unknown, schema: FieldSchema, root = "filter"): Filter {
  const budget: Budget = { conditions: 0, values: 0 };
  return parseNode(input, schema, root, 1, budget);
}

function parseNode(node: unknown, schema: FieldSchema, path: string, depth: number, budget: Budget): Filter {
  if (depth > FILTER_LIMITS.maxDepth) throw new FilterError(path, `filters nest at most ${FILTER_LIMITS.maxDepth} levels deep`);
  if (!isPlainObject(node)) throw new FilterError(path, `a filter must be an object ({"and"}, {"or"}, {"not"} or a condition), got ${show(node)}`);
  const keys = Object.keys(node);
  for (const combinator of ["and", "or"] as const) {
    if (!Object.hasOwn(node, combinator)) continue;
    if (keys.length !== 1) throw new FilterError(path, `an "${combinator}" filter has no other keys, got ${keys.map((k) => `"${k}"`).join(", ")}`);
    const list = node[combinator];
    if (!Array.isArray(list)) throw new FilterError(`${path}.${combinator}`, `must be an array of filters, got ${show(list)}`);
    if (list.length === 0) throw new FilterError(`${path}.${combinator}`, "must hold at least one filter");
    const children = list.map((child, i) => parseNode(child, schema, `${path}.${combinator}[${i}]`, depth + 1, budget));
    return combinator === "and" ? { and: children } : { or: children };
  }
  if (Object.hasOwn(node, "not")) {
    if (keys.length !== 1) throw new FilterError(path, `a "not" filter has no other keys, got ${keys.map((k) => `"${k}"`).join(", ")}`);
    return { not: parseNode(node.not, schema, `${path}.not`, depth + 1, budget) };
  }
  const unknown = keys.filter((k) => !CONDITION_KEYS.includes(k));
  if (unknown.length > 0) {
    throw new FilterError(path, `unknown key ${unknown.map((k) => `"${k}"`).join(", ")}: a filter is {"and"}, {"or"}, {"not"} or {"field", "op", "value"}`);
  }
  return parseCondition(node, schema, path, budget);
}

function parseCondition(node: Record<string, unknown>, schema: FieldSchema, path: string, budget: Budget): FilterCondition {
  if (++budget.conditions > FILTER_LIMITS.maxConditions) {
    throw new FilterError(path, `a filter holds at most ${FILTER_LIMITS.maxConditions} conditions`);
  }
  const { field, op, value } = node;
  if (typeof field !== "string" || field.length === 0) throw new FilterError(`${path}.field`, `must be a field name (a non-empty string), got ${show(field)}`);
  if (typeof op !== "string" || !(FILTER_OPS as readonly string[]).includes(op)) {
    throw new FilterError(`${path}.op`, `must be one of ${FILTER_OPS.join(", ")}, got ${show(op)}`);
  }
  const filterOp = op as FilterOp;
  if (!Object.hasOwn(schema, field)) {
    const declared = Object.keys(schema);
    throw new FilterError(
      `${path}.field`,
      `field "${field}" is not declared for filtering (${declared.length === 0 ? "this index declares no fields" : `declared: ${declared.join(", ")}`})`,
    );
  }
  const type = schema[field]!;
  if (!OPS_BY_TYPE[type].includes(filterOp)) {
    const hint = type === "string[]" && (filterOp === "eq" || filterOp === "ne") ? ` (use contains, or not + contains)` : "";
    throw new FilterError(`${path}.op`, `op "${filterOp}" does not apply to field "${field}" of type ${type}; it takes ${OPS_BY_TYPE[type].join(", ")}${hint}`);
  }
  const at = `${path}.value`;
  if (!Object.hasOwn(node, "value")) throw new FilterError(at, `op "${filterOp}" on field "${field}" needs a value`);
  if (filterOp === "exists") {
    if (typeof value !== "boolean") throw new FilterError(at, `op "exists" on field "${field}" takes true or false, got ${show(value)}`);
    chargeValues(budget, 1, at);
    return { field, op: filterOp, value };
  }
  const kind = scalarKind(type);
  if (LIST_OPS.has(filterOp)) {
    if (!Array.isArray(value)) throw new FilterError(at, `op "${filterOp}" on field "${field}" takes an array of ${kind}s, got ${show(value)}`);
    chargeValues(budget, value.length, at);
    value.forEach((v: unknown, i) => {
      if (!hasScalarKind(v, kind)) throw new FilterError(`${at}[${i}]`, `field "${field}" is ${type}: "${filterOp}" values must be ${kind}s, got ${show(v)}`);
    });
    return { field, op: filterOp, value: (value as FilterScalar[]).slice() };
  }
  if (!hasScalarKind(value, kind)) {
    const what = RANGE_OPS.has(filterOp) ? `compares numbers` : `takes a ${kind}`;
    throw new FilterError(at, `op "${filterOp}" on field "${field}" (${type}) ${what}, got ${show(value)}`);
  }
  chargeValues(budget, 1, at);
  return { field, op: filterOp, value: value as FilterScalar };
}

function chargeValues(budget: Budget, n: number, path: string): void {
  budget.values += n;
  if (budget.values > FILTER_LIMITS.maxValues) throw new FilterError(path, `a filter holds at most ${FILTER_LIMITS.maxValues} values in all`);
}

/**
 * The request's `filter` key before the index's schema is known: any JSON value (the structure is
 * checked by parseFilter once the schema is loaded, which gives the precise path). The edge parses
 * GET's `filter=<url-encoded JSON>` with parseFilterParam first.
 */
export const filterInputSchema = z.unknown();

/**
 * A zod schema that parses a filter against one index's fields: for request bodies validated once
 * the index (and so its schema) is known. A FilterError becomes one issue whose message starts
 * with the filter path, so a 400 built from the first issue's message names path and field.
 */
export function filterSchemaFor(fields: FieldSchema, root = "filter") {
  return z.unknown().transform((input, ctx): Filter => {
    try {
      return parseFilter(input, fields, root);
    } catch (e) {
      if (!(e instanceof FilterError)) throw e;
      ctx.addIssue({ code: "custom", message: e.message });
      return z.NEVER;
    }
  });
}

/** GET `filter=` (already URL-decoded by the query parser): JSON text, or a FilterError. */
export function parseFilterParam(text: string, root = "filter"): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new FilterError(root, "must be URL-encoded JSON");
  }
}

/** Unicode code point order (what UTF-8 byte order gives), so other languages sort alike. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (0xD800-0xDFFF) code points above 0xFFFF: they sort after every other unit.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

function compareScalars(a: FilterScalar, b: FilterScalar): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "string" && typeof b === "string") return compareCodePoints(a, b);
  return Number(a) - Number(b);
}

/** -0 and 0 are one value to every op; the canonical form writes 0. */
function canonicalScalar(v: FilterScalar): FilterScalar {
  return typeof v === "number" && Object.is(v, -0) ? 0 : v;
}

function canonicalNode(filter: Filter): Filter {
  if ("and" in filter || "or" in filter) {
    const key = "and" in filter ? "and" : "or";
    const list: Filter[] = "and" in filter ? filter.and : (filter as { or: Filter[] }).or;
    // Flatten same-kind nesting, then sort and drop duplicates (and/or are associative, commutative, idempotent).
    const parts = new Map<string, Filter>();
    for (const child of list.map(canonicalNode)) {
      const flat = key in child ? (child as Record<string, Filter[]>)[key]! : [child];
      for (const f of flat) parts.set(JSON.stringify(f), f);
    }
    const sorted = [...parts.keys()].sort().map((k) => parts.get(k)!);
    if (sorted.length === 1) return sorted[0]!;
    return key === "and" ? { and: sorted } : { or: sorted };
  }
  if ("not" in filter) {
    const inner = canonicalNode(filter.not);
    return "not" in inner ? inner.not : { not: inner };
  }
  const { field, op, value } = filter;
  if (Array.isArray(value)) {
    const set = [...new Map(value.map((v) => canonicalScalar(v)).map((v) => [`${typeof v}:${String(v)}`, v])).values()];
    set.sort(compareScalars);
    return { field, op, value: set };
  }
  return { field, op, value: canonicalScalar(value) };
}

/**
 * The canonical JSON text of a validated filter, for the result-cache key: and/or lists flattened,
 * sorted and deduplicated (a one-element list becomes its element), double negation removed,
 * in/nin values sorted and deduplicated, keys in a fixed order. Equivalent orderings give the same
 * text; a filter that differs in any field, op or value gives a different one.
 */
export function canonicalFilter(filter: Filter): string {
  return JSON.stringify(canonicalNode(filter));
}

/**
 * Whether a document's fields satisfy a validated filter: the reference semantics that compiled
 * column bitmaps must reproduce row for row (used by tests, and fine for a handful of documents).
 */
export function matchesFilter(filter: Filter, fields: Readonly<Record<string, unknown>>): boolean {
  if ("and" in filter) return filter.and.every((f) => matchesFilter(f, fields));
  if ("or" in filter) return filter.or.some((f) => matchesFilter(f, fields));
  if ("not" in filter) return !matchesFilter(filter.not, fields);
  return matchesCondition(filter, fieldValue(fields, filter.field));
}

function matchesCondition({ op, value }: FilterCondition, actual: unknown): boolean {
  if (op === "exists") return (actual !== undefined) === value;
  if (actual === undefined) return op === "ne" || op === "nin";
  const holds = (v: FilterScalar): boolean => (Array.isArray(actual) ? actual.includes(v) : actual === v);
  switch (op) {
    case "eq":
      return actual === value;
    case "ne":
      return actual !== value;
    case "contains":
      return Array.isArray(actual) && actual.includes(value);
    case "in":
      return (value as FilterScalar[]).some(holds);
    case "nin":
      return !(value as FilterScalar[]).some(holds);
    case "gt":
      return (actual as number) > (value as number);
    case "gte":
      return (actual as number) >= (value as number);
    case "lt":
      return (actual as number) < (value as number);
    case "lte":
      return (actual as number) <= (value as number);
  }
}
