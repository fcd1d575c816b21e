/**
 * The query model's routes, POST /v1/qnet and POST /v1/rerank (mounted under /v1): validate → (rerank by ids: resolve the
 * index's active version in D1) → ONE worker, the rendezvous owner of the tenant, failing over to
 * the next owner (routing/owner-call.ts) → render. Requires an API key with the "search" scope.
 *
 * /v1/qnet answers the q-net in the shared wire format (shared/FORMATS.md, application/msgpack),
 * which clients run with shared/qnet/evaluate.ts. /v1/rerank answers JSON `{scores, missing}`, or
 * with `Accept: application/msgpack` the worker's frames: the `qnet` frame first when `includeQNet`,
 * then the `scores` frame.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { encodeFrame, type ScoresFrame } from "../../../shared/api/frames.ts";
import { type Frame, MSGPACK_FRAMES_CONTENT_TYPE, qnetRequestSchema, rerankRequestSchema } from "../../../shared/api/worker-api.ts";
import { concatBytes } from "../../../shared/bytes.ts";
import { requireApiKey } from "../auth/require-api-key.ts";
import type { EdgeEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { readJson } from "../http/validate.ts";
import { callOwner, type OwnerCallInput } from "../routing/owner-call.ts";
import { defaultFetcher, type Fetcher, workerFrameDecoder } from "../routing/worker-client.ts";
import { workerPoolFromEnv } from "../routing/worker-pool.ts";
import { activeVersionOrThrow, d1SearchCatalog, type SearchCatalog } from "../search/catalog.ts";
import { publicQNetSchema, publicRerankSchema, QNET_BODY_LIMIT_BYTES, RERANK_BODY_LIMIT_BYTES } from "./request.ts";

export interface QueryModelDeps {
  fetcher?: Fetcher;
  catalog?: SearchCatalog;
  /** Authentication; requireApiKey("search") in production, a stub in unit tests. */
  auth?: MiddlewareHandler<EdgeEnv>;
}

/** The placement key: one tenant's q-net work lands on one worker (warm tokenizer/model caches). */
const placementKey = (tenant: string) => `${tenant}/qnet`;

export function createQueryModelRoutes(deps: QueryModelDeps = {}): Hono<EdgeEnv> {
  const fetcher = deps.fetcher ?? defaultFetcher;
  const catalog = deps.catalog ?? d1SearchCatalog;
  const auth = deps.auth ?? requireApiKey("search");
  const router = new Hono<EdgeEnv>();
  router.use("/qnet", auth);
  router.use("/rerank", auth);

  /**
   * The tenant's owner, asked for frames (validated by frameSchema; a late failure is an error frame).
   * A refusal or no answer is thrown, for app.onError (errors.ts) to map.
   */
  const askOwner = <T>(c: Context<EdgeEnv>, path: string, json: { tenant: string }, read: OwnerCallInput<T>["read"]) =>
    callOwner({
      key: placementKey(json.tenant),
      pool: workerPoolFromEnv(c.env),
      fetcher,
      path,
      tenant: json.tenant,
      json,
      accept: MSGPACK_FRAMES_CONTENT_TYPE,
      signal: c.req.raw.signal,
      read,
    });

  router.post("/qnet", async (c) => {
    const body = await readJson(c, publicQNetSchema, { maxBytes: QNET_BODY_LIMIT_BYTES });
    const request = qnetRequestSchema.parse({ ...body, tenant: c.get("auth").tenantId });
    const { value } = await askOwner(c, "/v1/qnet", request, async (response) => {
      const type = (response.headers.get("content-type") ?? "").split(";", 1)[0]!.trim().toLowerCase();
      if (type !== MSGPACK_FRAMES_CONTENT_TYPE) throw new Error(`q-net answer has content type ${type}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (bytes.length === 0) throw new Error("empty q-net answer");
      return bytes;
    });
    return new Response(value, { headers: { "content-type": MSGPACK_FRAMES_CONTENT_TYPE, "cache-control": "private, no-store" } });
  });

  router.post("/rerank", async (c) => {
    const body = await readJson(c, publicRerankSchema, { maxBytes: RERANK_BODY_LIMIT_BYTES });
    const tenant = c.get("auth").tenantId;
    const frames = (c.req.header("accept") ?? "").toLowerCase().includes(MSGPACK_FRAMES_CONTENT_TYPE);
    if (body.includeQNet && !frames) {
      throw new ApiError(400, "invalid_request", "body.includeQNet: the q-net frame needs Accept: application/msgpack");
    }
    const version = body.ids ? (await activeVersionOrThrow(catalog, c.env.DB, tenant, body.index!)).version : undefined;
    const request = rerankRequestSchema.parse({ ...body, tenant, ...(version === undefined ? {} : { version }) });
    const { value } = await askOwner(c, "/v1/rerank", request, async (response) => {
      const decoder = workerFrameDecoder();
      const got = decoder.push(new Uint8Array(await response.arrayBuffer()));
      decoder.end();
      const last = got.at(-1);
      if (last?.type === "error") throw new Error(`error frame ${last.code}`);
      if (last?.type !== "scores") throw new Error("rerank answer without a scores frame");
      return { qnet: got.find((f) => f.type === "qnet"), scores: last };
    });
    const headers = { "cache-control": "private, no-store", ...(version === undefined ? {} : { "x-index-version": String(version) }) };
    if (!frames) return c.json({ scores: value.scores.scores, missing: value.scores.missing }, 200, headers);
    const out: Frame[] = [...(body.includeQNet && value.qnet ? [value.qnet] : []), value.scores satisfies ScoresFrame];
    return new Response(concatBytes(out.map(encodeFrame)), { headers: { "content-type": MSGPACK_FRAMES_CONTENT_TYPE, ...headers } });
  });

  return router;
}

export const queryModelRoutes = createQueryModelRoutes();
