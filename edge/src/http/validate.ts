/**
 * Input validation for every route: JSON bodies (content type, size, syntax, schema), path
 * parameters and query strings, all through zod. Failures are thrown as ApiError, so a handler
 * reads as `const body = await readJson(c, schema)` and only ever sees valid, typed input.
 */
import type { Context } from "hono";
import type { z } from "zod";
import { readCappedBody } from "../../../shared/http/capped-body.ts";
import { ApiError } from "../errors.ts";

/** Default cap for JSON bodies; routes that take larger bodies (rerank texts) pass their own. */
export const DEFAULT_JSON_LIMIT_BYTES = 64 * 1024;

/** Where the invalid value came from; prefixes the field path in messages ("body.id: ..."). */
export type InputSource = "body" | "path" | "query";

const MAX_REPORTED_ISSUES = 5;

function formatPath(source: InputSource, path: readonly PropertyKey[]): string {
  let out: string = source;
  for (const segment of path) out += typeof segment === "number" ? `[${segment}]` : `.${String(segment)}`;
  return out;
}

/** "body.id: must match …; body: Unrecognized key: "x"" — names each offending field. */
export function describeIssues(source: InputSource, issues: readonly z.core.$ZodIssue[]): string {
  const parts = issues.slice(0, MAX_REPORTED_ISSUES).map((issue) => `${formatPath(source, issue.path)}: ${issue.message}`);
  if (issues.length > MAX_REPORTED_ISSUES) parts.push(`and ${issues.length - MAX_REPORTED_ISSUES} more`);
  return parts.join("; ");
}

/** Validates an already-parsed value (path params, query, JSON) or throws a 400 naming the fields. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, source: InputSource): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ApiError(400, "invalid_request", describeIssues(source, result.error.issues));
  return result.data;
}

function isJsonContentType(header: string | null): boolean {
  if (header === null) return false;
  const mediaType = header.split(";", 1)[0]!.trim().toLowerCase();
  return mediaType === "application/json" || (mediaType.startsWith("application/") && mediaType.endsWith("+json"));
}

/**
 * How much of an oversized body without Content-Length the edge reads and discards before its 413,
 * so the connection stays usable (shared/http/capped-body.ts explains why). Bodies are read only
 * after authentication, so only a tenant's own key can make the edge drain.
 */
export const BODY_DRAIN_LIMIT_BYTES = 16 * 2 ** 20;

/**
 * At most `maxBytes` of the body (shared/http/capped-body.ts), or a 413: at once when Content-Length
 * declares more, otherwise after draining the rest (up to BODY_DRAIN_LIMIT_BYTES).
 */
export function readBodyCapped(request: Request, maxBytes: number): Promise<Uint8Array> {
  return readCappedBody(request, maxBytes, () => new ApiError(413, "payload_too_large", `request body exceeds ${maxBytes} bytes`), { drainLimitBytes: BODY_DRAIN_LIMIT_BYTES });
}

export interface ReadJsonOptions {
  maxBytes?: number;
}

/** Content type (415), size (413), JSON syntax (400), then the schema (400 with field paths). */
export async function readJson<S extends z.ZodType>(c: Context, schema: S, options: ReadJsonOptions = {}): Promise<z.output<S>> {
  if (!isJsonContentType(c.req.header("content-type") ?? null)) {
    throw new ApiError(415, "unsupported_media_type", "request body must be JSON: send Content-Type: application/json");
  }
  const bytes = await readBodyCapped(c.req.raw, options.maxBytes ?? DEFAULT_JSON_LIMIT_BYTES);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw new ApiError(400, "invalid_json", "request body is not valid UTF-8 JSON");
  }
  return parseInput(schema, value, "body");
}
