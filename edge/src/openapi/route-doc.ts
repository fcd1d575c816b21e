/**
 * What a module declares about its public routes for the OpenAPI document. Each router exports
 * its RouteDoc list next to the zod schemas it validates with, so the document is generated from
 * the same schemas that run: the docs cannot drift from the checks.
 */
import type { z } from "zod";
import type { Scope } from "../db/api-keys.ts";

export type HttpMethod = "get" | "post" | "put" | "patch" | "delete";

export interface ResponseDoc {
  description: string;
  /** JSON body schema; omit for no body. */
  schema?: z.ZodType;
  /** Non-JSON bodies (e.g. text/html, application/msgpack) described in words. */
  contentType?: string;
}

export interface RouteDoc {
  method: HttpMethod;
  /** OpenAPI path template: /v1/indexes/{id}. */
  path: string;
  summary: string;
  description?: string;
  tags: readonly string[];
  /** "apiKey": tenant key with any of `scopes`; "admin": ADMIN_TOKEN; "none": public. */
  auth: "apiKey" | "admin" | "none";
  scopes?: readonly Scope[];
  params?: z.ZodObject;
  query?: z.ZodObject;
  /** A JSON request body (validated with readJson). */
  body?: z.ZodType;
  /** A non-JSON request body, described in words (uploads). */
  rawBody?: { contentType: string; description: string };
  responses: Record<number, ResponseDoc>;
}
