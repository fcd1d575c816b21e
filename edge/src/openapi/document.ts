/**
 * Builds the OpenAPI 3.1 document from the routers' RouteDoc lists. Schemas come from the zod
 * schemas the routes validate with (z.toJSONSchema), and the error responses that every route of
 * a kind shares (400/413/415 for bodies, 401/403/429 for API keys, ...) are added here, once.
 */
import { z } from "zod";
import type { ResponseDoc, RouteDoc } from "./route-doc.ts";

export const apiErrorSchema = z.object({
  error: z.object({
    code: z.string().describe("stable, machine-readable: unauthorized, forbidden, not_found, invalid_request, …"),
    message: z.string().describe("for people: names the offending field where there is one"),
  }),
});

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: "input" | "output"): JsonSchema {
  // Refinements and transforms cannot be expressed in JSON Schema; the checks still run at runtime.
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as JsonSchema;
  return rest;
}

const ERROR_REF = { $ref: "#/components/schemas/Error" };
const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: ERROR_REF } } });

function standardErrors(route: RouteDoc): Record<number, string> {
  const errors: Record<number, string> = {};
  if (route.params || route.query || route.body) errors[400] = "Invalid input; the message names the field";
  if (route.body || route.rawBody) {
    errors[413] = "Request body too large";
    errors[415] = "Wrong Content-Type";
  }
  if (route.auth === "apiKey") {
    errors[401] = "Missing, invalid or revoked API key";
    errors[403] = "The API key lacks a required scope";
    errors[429] = "Rate limit exceeded; see the Retry-After header";
  }
  if (route.auth === "admin") {
    errors[401] = "Missing or invalid admin token";
    errors[503] = "The admin API is not configured";
  }
  errors[500] = "Internal error";
  return errors;
}

function response(doc: ResponseDoc, status: number): Record<string, unknown> {
  if (doc.schema) return { description: doc.description, content: { "application/json": { schema: jsonSchema(doc.schema, "output") } } };
  if (doc.contentType) return { description: doc.description, content: { [doc.contentType]: {} } };
  return status >= 400 ? errorResponse(doc.description) : { description: doc.description };
}

function parameters(schema: z.ZodObject | undefined, location: "path" | "query"): JsonSchema[] {
  if (!schema) return [];
  return Object.entries(schema.shape).map(([name, field]) => {
    const fieldSchema = field as z.ZodType;
    return {
      name,
      in: location,
      required: location === "path" || !fieldSchema.safeParse(undefined).success,
      schema: jsonSchema(fieldSchema, "input"),
    };
  });
}

function operation(route: RouteDoc): JsonSchema {
  const responses: Record<string, unknown> = {};
  for (const [status, description] of Object.entries(standardErrors(route))) responses[status] = errorResponse(description);
  for (const [status, doc] of Object.entries(route.responses)) responses[status] = response(doc, Number(status));

  const scopeNote = route.scopes?.length ? `Requires an API key with scope ${route.scopes.map((s) => `\`${s}\``).join(" or ")}.` : undefined;
  const description = [route.description, scopeNote].filter(Boolean).join("\n\n");
  const op: JsonSchema = {
    operationId: `${route.method}${route.path.replace(/[{}]/g, "").replace(/[^A-Za-z0-9]+(.)?/g, (_m, ch: string | undefined) => (ch ?? "").toUpperCase())}`,
    summary: route.summary,
    tags: route.tags,
    security: route.auth === "apiKey" ? [{ apiKey: [] }] : route.auth === "admin" ? [{ adminToken: [] }] : [],
    responses,
  };
  if (description) op.description = description;
  if (route.scopes?.length) op["x-scopes"] = route.scopes;
  const params = [...parameters(route.params, "path"), ...parameters(route.query, "query")];
  if (params.length) op.parameters = params;
  if (route.body) op.requestBody = { required: true, content: { "application/json": { schema: jsonSchema(route.body, "input") } } };
  else if (route.rawBody) op.requestBody = { required: true, description: route.rawBody.description, content: { [route.rawBody.contentType]: {} } };
  return op;
}

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
}

export function buildOpenApiDocument(routes: readonly RouteDoc[], info: OpenApiInfo): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    const item = (paths[route.path] ??= {});
    if (item[route.method]) throw new Error(`OpenAPI: ${route.method.toUpperCase()} ${route.path} is documented twice`);
    item[route.method] = operation(route);
  }
  return {
    openapi: "3.1.0",
    info,
    paths,
    components: {
      schemas: { Error: jsonSchema(apiErrorSchema, "output") },
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "A tenant API key: `Authorization: Bearer hyp_…`" },
        adminToken: { type: "http", scheme: "bearer", description: "The operator's ADMIN_TOKEN" },
      },
    },
  };
}
