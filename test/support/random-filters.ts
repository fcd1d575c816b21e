/**
 * Random field schemas, documents and filters for property tests of the filter language, the
 * filter columns and the compiler. Values come from small pools so equalities, duplicates and
 * tricky strings (empty, accented, astral: code point order differs from UTF-16 order there) occur.
 */
import type { Filter, FilterCondition, FilterOp, FilterScalar } from "../../shared/filter/filter.ts";
import { OPS_BY_TYPE } from "../../shared/filter/filter.ts";
import { FIELD_TYPES, type FieldSchema, type FieldType } from "../../shared/filter/schema.ts";

export const STRING_POOL = ["", "a", "b", "ab", "B", "é", "日本", "\u{1F600}", "\uFFFD", "z z"];
export const NUMBER_POOL = [-1e300, -2.5, -1, 0, 0.5, 1, 2, 3, 1999, 2024, 1e300];

type Rand = () => number;
const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

export function randomSchema(rand: Rand): Record<string, FieldType> {
  const schema: Record<string, FieldType> = {};
  const n = 1 + Math.floor(rand() * 5);
  for (let i = 0; i < n; i++) schema[`f${i}`] = pick(rand, FIELD_TYPES);
  return schema;
}

function randomValue(type: FieldType, rand: Rand): unknown {
  switch (type) {
    case "string":
      return pick(rand, STRING_POOL);
    case "number":
      return rand() < 0.05 ? -0 : pick(rand, NUMBER_POOL);
    case "boolean":
      return rand() < 0.5;
    case "string[]":
      return Array.from({ length: Math.floor(rand() * 4) }, () => pick(rand, STRING_POOL));
  }
}

/** A document: each declared field absent (missing, or null) about a quarter of the time; plus an undeclared field. */
export function randomDocument(schema: FieldSchema, rand: Rand): Record<string, unknown> {
  const doc: Record<string, unknown> = { text: "t", undeclared: pick(rand, STRING_POOL) };
  for (const [name, type] of Object.entries(schema)) {
    const roll = rand();
    if (roll < 0.2) continue;
    doc[name] = roll < 0.25 ? null : randomValue(type, rand);
  }
  return doc;
}

function randomScalar(type: FieldType, rand: Rand): FilterScalar {
  if (type === "number") return rand() < 0.2 ? 1000 * rand() : pick(rand, NUMBER_POOL);
  if (type === "boolean") return rand() < 0.5;
  // Sometimes a value no document holds.
  return rand() < 0.15 ? "nowhere" : pick(rand, STRING_POOL);
}

export function randomCondition(schema: FieldSchema, rand: Rand): FilterCondition {
  const field = pick(rand, Object.keys(schema));
  const type = schema[field]!;
  const op: FilterOp = pick(rand, OPS_BY_TYPE[type]);
  if (op === "exists") return { field, op, value: rand() < 0.5 };
  if (op === "in" || op === "nin") return { field, op, value: Array.from({ length: Math.floor(rand() * 4) }, () => randomScalar(type, rand)) };
  return { field, op, value: randomScalar(type, rand) };
}

/** A random filter within the limits (depth ≤ maxDepth levels). */
export function randomFilter(schema: FieldSchema, rand: Rand, maxDepth = 4): Filter {
  const roll = rand();
  if (maxDepth <= 1 || roll < 0.4) return randomCondition(schema, rand);
  if (roll < 0.55) return { not: randomFilter(schema, rand, maxDepth - 1) };
  const list = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => randomFilter(schema, rand, maxDepth - 1));
  return roll < 0.8 ? { and: list } : { or: list };
}

function shuffle<T>(xs: readonly T[], rand: Rand): T[] {
  const out = xs.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** The same filter with every and/or list and in/nin value list shuffled. */
export function reorderFilter(filter: Filter, rand: Rand): Filter {
  if ("and" in filter) return { and: shuffle(filter.and.map((f) => reorderFilter(f, rand)), rand) };
  if ("or" in filter) return { or: shuffle(filter.or.map((f) => reorderFilter(f, rand)), rand) };
  if ("not" in filter) return { not: reorderFilter(filter.not, rand) };
  return Array.isArray(filter.value) ? { ...filter, value: shuffle(filter.value, rand) } : { ...filter };
}

/** The conditions of a filter, depth first. */
export function conditionsOf(filter: Filter): FilterCondition[] {
  if ("and" in filter) return filter.and.flatMap(conditionsOf);
  if ("or" in filter) return filter.or.flatMap(conditionsOf);
  if ("not" in filter) return conditionsOf(filter.not);
  return [filter];
}

/** A copy with the `index`-th condition's value changed to one it did not hold (so the filter differs). */
export function mutateCondition(filter: Filter, index: number, type: (field: string) => FieldType): Filter {
  let seen = -1;
  const walk = (f: Filter): Filter => {
    if ("and" in f) return { and: f.and.map(walk) };
    if ("or" in f) return { or: f.or.map(walk) };
    if ("not" in f) return { not: walk(f.not) };
    if (++seen !== index) return { ...f };
    if (f.op === "exists") return { ...f, value: !f.value };
    const t = type(f.field);
    const fresh: FilterScalar = t === "number" ? 123456.789 : t === "boolean" ? !(f.value as boolean) : "fresh-value";
    if (Array.isArray(f.value)) {
      if (t === "boolean") {
        const set = new Set(f.value);
        return { ...f, value: set.size === 2 ? [false] : [...set, !set.has(true)] };
      }
      return { ...f, value: [...f.value, fresh] };
    }
    return { ...f, value: fresh };
  };
  return walk(filter);
}
