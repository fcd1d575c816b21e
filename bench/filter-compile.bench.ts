/**
 * Filter compile time at 1M rows: building a segment's filter columns from documents with random
 * field values, encoding and decoding them (the load path), then compiling representative filters
 * to matching-row bitmaps (what each filtered search does per shard), plus the planner's entry-row
 * draw. Medians (and p90) over runs, each run in a rotating order.
 *
 *   node bin/run-ts.mjs bench/filter-compile.bench.ts [--rows 1000000] [--runs 15]
 *
 * Fields: section (string, 20 values), year (number, 1990-2025 with fractions), tags (string[], 0-4
 * of 200), free (boolean, 10% absent), user (string, 50,000 values: a per-user filter).
 */
import { parseArgs } from "node:util";
import { type Filter, parseFilter } from "../shared/filter/filter.ts";
import type { FieldSchema } from "../shared/filter/schema.ts";
import { buildFilterColumns, decodeFilterColumns, encodeFilterColumns } from "../shared/index/filter-columns.ts";
import { compileFilter } from "../gpu-worker/src/filter/compile.ts";
import { choosePlan, filteredEntryRows } from "../gpu-worker/src/filter/plan.ts";
import { countRows } from "../gpu-worker/src/filter/row-bitmap.ts";
import { seededRandom } from "../gpu-worker/src/search/random.ts";
import { nodeChecksums } from "../gpu-worker/src/store/checksums.ts";
import { percentile } from "./stats.ts";

const { values: args } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    runs: { type: "string", default: "15" },
  },
});
const ROWS = Number(args.rows);
const RUNS = Number(args.runs);
if (!Number.isInteger(ROWS) || ROWS < 1) throw new Error(`--rows must be a positive integer, got ${args.rows}`);
if (!Number.isInteger(RUNS) || RUNS < 3) throw new Error(`--runs must be an integer ≥ 3, got ${args.runs}`);

const schema: FieldSchema = { section: "string", year: "number", tags: "string[]", free: "boolean", user: "string" };
const rand = seededRandom(1);
const pick = (n: number) => Math.floor(rand() * n);

const t0 = performance.now();
const docs = Array.from({ length: ROWS }, () => {
  const doc: Record<string, unknown> = {
    section: `section-${pick(20)}`,
    year: 1990 + pick(36) + (rand() < 0.5 ? 0.5 : 0),
    tags: Array.from({ length: pick(5) }, () => `tag-${pick(200)}`),
    user: `user-${pick(50_000)}`,
  };
  if (rand() >= 0.1) doc.free = rand() < 0.3;
  return doc;
});
const msDocs = performance.now() - t0;
const t1 = performance.now();
const built = buildFilterColumns(schema, docs);
const msBuild = performance.now() - t1;
const t2 = performance.now();
const bytes = encodeFilterColumns(built, { checksums: nodeChecksums });
const msEncode = performance.now() - t2;
const decodeTimes: number[] = [];
let columns = built;
for (let i = 0; i < Math.min(RUNS, 5); i++) {
  const t = performance.now();
  columns = decodeFilterColumns(bytes, { expectedRows: ROWS, expectedSchema: schema, checksums: nodeChecksums });
  decodeTimes.push(performance.now() - t);
}

const filters: [string, unknown][] = [
  ["section eq (5%)", { field: "section", op: "eq", value: "section-3" }],
  ["user eq (0.002%)", { field: "user", op: "eq", value: "user-42" }],
  ["year range (and of gte, lt: 14%)", { and: [{ field: "year", op: "gte", value: 2010 }, { field: "year", op: "lt", value: 2015 }] }],
  ["tags contains (1%)", { field: "tags", op: "contains", value: "tag-7" }],
  ["tags in 20 values", { field: "tags", op: "in", value: Array.from({ length: 20 }, (_, i) => `tag-${i * 3}`) }],
  ["free eq true / exists", { or: [{ field: "free", op: "eq", value: true }, { field: "free", op: "exists", value: false }] }],
  [
    "nested: (section in 3 and year > 2000) or (not free and tags contains), 5 conditions",
    {
      or: [
        { and: [{ field: "section", op: "in", value: ["section-1", "section-2", "section-3"] }, { field: "year", op: "gt", value: 2000 }] },
        { and: [{ not: { field: "free", op: "eq", value: true } }, { field: "tags", op: "contains", value: "tag-1" }, { field: "user", op: "ne", value: "user-1" }] },
      ],
    },
  ],
  ["year in 512 values", { field: "year", op: "in", value: Array.from({ length: 512 }, (_, i) => 1990 + i / 16) }],
];
const parsed: [string, Filter][] = filters.map(([name, f]) => [name, parseFilter(f, schema)]);

const times = new Map<string, number[]>(parsed.map(([name]) => [name, []]));
const entryTimes: number[] = [];
const counts = new Map<string, number>();
for (let run = 0; run < RUNS; run++) {
  for (let i = 0; i < parsed.length; i++) {
    const [name, filter] = parsed[(i + run) % parsed.length]!;
    const t = performance.now();
    const bitmap = compileFilter(filter, columns);
    const count = countRows(bitmap);
    times.get(name)!.push(performance.now() - t);
    counts.set(name, count);
    if (name.startsWith("section eq")) {
      const te = performance.now();
      filteredEntryRows(bitmap, { count: 10_000, seed: run });
      entryTimes.push(performance.now() - te);
    }
  }
}

const ms = (v: number) => `${v.toFixed(1).padStart(7)} ms`;
console.log(`filter columns at ${ROWS.toLocaleString("en")} rows, fields ${JSON.stringify(schema)}`);
console.log(`  documents generated in ${(msDocs / 1000).toFixed(1)} s (not part of any cost)`);
console.log(`  build columns ${ms(msBuild)}, encode ${ms(msEncode)}, ${(bytes.length / 2 ** 20).toFixed(1)} MiB (${(bytes.length / ROWS).toFixed(1)} B/row)`);
console.log(`  decode + verify (zlib CRC, dictionaries, codes) p50 ${ms(percentile(decodeTimes, 50))} over ${decodeTimes.length} runs`);
console.log("");
console.log(`compile to a matching-row bitmap (+ count), ${RUNS} runs each:`);
for (const [name] of parsed) {
  const sample = times.get(name)!;
  const matches = counts.get(name)!;
  console.log(
    `  ${name.padEnd(84)} p50 ${ms(percentile(sample, 50))}  min ${ms(Math.min(...sample))}  matches ${matches.toLocaleString("en").padStart(9)} (${((100 * matches) / ROWS).toFixed(3)}%) -> ${choosePlan(matches, ROWS, { entryPoints: 10_000 })}`,
  );
}
console.log(`  filteredEntryRows (10,000 of the section eq matches)                                  p50 ${ms(percentile(entryTimes, 50))}`);
