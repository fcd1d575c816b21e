/// <reference path="../../../shared/qnet/msgpackr-no-eval.d.ts" />
/**
 * The public search request: `GET /v1/indexes/:id/search?q=…&k=…` or `POST` with a JSON or msgpack
 * body. Both are validated by one zod schema built on the worker's searchParamsSchema and LIMITS,
 * so the edge refuses exactly what the worker would (and unknown options, which it would not see).
 */
import type { Context } from "hono";
import { Unpackr } from "msgpackr/index-no-eval";
import { z } from "zod";
import { msgpackStrictValueEnd } from "../../../shared/api/frames.ts";
import { LIMITS, MSGPACK_FRAMES_CONTENT_TYPE, searchParamsSchema } from "../../../shared/api/worker-api.ts";
import { FILTER_LIMITS, filterInputSchema, parseFilterParam } from "../../../shared/filter/filter.ts";
import { ApiError } from "../errors.ts";
import { parseInput, readBodyCapped, readJson } from "../http/validate.ts";

/** The filter language as the API docs state it (shared/filter/filter.ts is the definition). */
export const FILTER_DESCRIPTION =
  'A metadata filter over the index\'s declared fields: {"and": [filter, ...]} | {"or": [filter, ...]} | {"not": filter} | {"field": NAME, "op": OP, "value": V}, ' +
  "OP one of eq, ne, in, nin, gt, gte, lt, lte, contains, exists. in/nin take an array; contains is for string[] fields (the array holds the value); " +
  "exists takes true or false; gt/gte/lt/lte compare numbers. A condition on an absent field is false, except ne, nin and exists: false (MongoDB's rule). " +
  `At most ${FILTER_LIMITS.maxDepth} levels deep, ${FILTER_LIMITS.maxConditions} conditions and ${FILTER_LIMITS.maxValues} values in all. ` +
  "An undeclared field, a wrong op or value type, or a limit exceeded is a 400 naming the filter path and field. Every hit satisfies the filter.";

export const CONSISTENCY_LEVELS = ["strong", "eventual"] as const;
export type Consistency = (typeof CONSISTENCY_LEVELS)[number];

export const publicSearchSchema = searchParamsSchema
  .extend({
    query: z.string().trim().min(1, "query must not be empty").max(LIMITS.queryChars),
    fields: z.array(z.string().min(1).max(64)).max(LIMITS.fieldsMax).default([]),
    /** Progressive results (NDJSON, server-sent events or msgpack frames, by Accept). */
    stream: z.boolean().default(false),
    /**
     * "strong": the answer sees every write acknowledged before the search started (the WAL tail
     * after the searched version). "eventual": the version's segments only, skipping writes not yet
     * compacted, which is faster.
     */
    consistency: z.enum(CONSISTENCY_LEVELS).default("strong"),
    /**
     * A metadata filter over the index's declared fields (README "Filters"). Any JSON value here: it
     * is parsed against the index's field schema (shared/filter/filter.ts parseFilter) once the
     * catalog read has loaded it, which gives a 400 naming the filter path and field.
     */
    filter: filterInputSchema.optional().meta({
      type: "object",
      description: FILTER_DESCRIPTION,
      examples: [{ and: [{ field: "section", op: "eq", value: "intro" }, { field: "year", op: "gte", value: 2000 }, { not: { field: "tags", op: "contains", value: "draft" } }] }],
    }),
  })
  .strict();
export type PublicSearch = z.infer<typeof publicSearchSchema>;

/** Room for a filter at its limits (1,024 values, 64 conditions) beside the query. */
export const SEARCH_BODY_LIMIT_BYTES = 64 * 1024;
const INTEGER = /^-?[0-9]{1,16}$/;
const BOOLEANS: Record<string, boolean> = { true: true, false: false, "1": true, "0": false };
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false });

/**
 * Query string → the schema's input: `q` is the query, numbers and booleans are converted only when
 * they look like one (anything else reaches zod unchanged and fails with a precise message),
 * `fields` is comma-separated, `filter` is URL-encoded JSON, and a repeated parameter is refused
 * rather than silently picked.
 */
export function searchFromQueryString(url: URL): PublicSearch {
  const input: Record<string, unknown> = {};
  for (const name of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(name);
    if (values.length > 1) throw new ApiError(400, "invalid_request", `query.${name}: given more than once`);
    const value = values[0]!;
    const key = name === "q" ? "query" : name;
    if (key === "query" && name !== "q") throw new ApiError(400, "invalid_request", "query: use q=… for the query text");
    if (key === "fields") input.fields = value === "" ? [] : value.split(",");
    else if (key === "filter") input.filter = parseFilterParam(value);
    else if (key === "earlyStop" || key === "stream") input[key] = BOOLEANS[value] ?? value;
    else if (key !== "query" && key !== "mode" && key !== "consistency" && INTEGER.test(value)) input[key] = Number(value);
    else input[key] = value;
  }
  if (input.query === undefined) throw new ApiError(400, "invalid_request", "query.q: required (the query text)");
  return parseInput(publicSearchSchema, input, "query");
}

function mediaType(header: string | undefined): string {
  return (header ?? "").split(";", 1)[0]!.trim().toLowerCase();
}

/** POST body: JSON (application/json) or one msgpack map (application/msgpack); anything else is 415. */
export async function searchFromBody(c: Context): Promise<PublicSearch> {
  if (mediaType(c.req.header("content-type")) !== MSGPACK_FRAMES_CONTENT_TYPE) {
    return readJson(c, publicSearchSchema, { maxBytes: SEARCH_BODY_LIMIT_BYTES });
  }
  const bytes = await readBodyCapped(c.req.raw, SEARCH_BODY_LIMIT_BYTES);
  let value: unknown;
  try {
    // Walk the structure first: exactly one complete value, no 0xc1 (which msgpackr would decode to a
    // marker object instead of failing), and valid UTF-8 in every string (as a JSON body must be).
    if (bytes.length === 0 || msgpackStrictValueEnd(bytes, 0, bytes.length) !== bytes.length) throw new Error("not one msgpack value");
    value = unpackr.unpack(bytes);
  } catch {
    throw new ApiError(400, "invalid_msgpack", "request body is not one valid msgpack value");
  }
  return parseInput(publicSearchSchema, value, "body");
}

export type ResponseFormat = "json" | "msgpack" | "ndjson" | "sse";

/** By Accept: msgpack frames when asked for; streams as SSE when asked for, NDJSON otherwise. */
export function responseFormat(accept: string | undefined, stream: boolean): ResponseFormat {
  const types = (accept ?? "").toLowerCase();
  if (types.includes(MSGPACK_FRAMES_CONTENT_TYPE)) return "msgpack";
  if (!stream) return "json";
  return types.includes("text/event-stream") ? "sse" : "ndjson";
}
