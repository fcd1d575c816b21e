/**
 * Signature check for every /v1 route, in the order that keeps an unauthenticated caller from
 * costing anything: first the headers alone (shared/api/signing.ts: present, well-formed, inside the
 * window, a valid tenant, and the HMAC over the request line and the *declared* body hash), and only
 * then the body, hashed while it streams in, counted against the admission's budget of unverified
 * body bytes, and compared with the declared hash at the end. A request without a valid signature
 * gets its 401 before one body byte is read.
 *
 * The signed tenant goes on the context; routes only ever act for it (request-body.ts refuses a body
 * naming another one). `refuseReplays` guards the routes that write: a signature is good once there.
 */
import { createHash } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { checkSignedHeaders, SIGNATURE_HEADERS, verifySignature } from "../../../shared/api/signing.ts";
import { ID_PATTERN } from "../../../shared/api/worker-api.ts";
import type { Admission } from "./admission.ts";
import type { ServiceEnv } from "./context.ts";
import { ApiError } from "./errors.ts";
import type { ReplayCache } from "./replay-cache.ts";
import { readBody } from "./request-body.ts";

export interface AuthOptions {
  /** Verifying secrets (several during rotation). Empty only with `insecureDev`. */
  secrets: readonly string[];
  /** Local development without secrets: the tenant header is trusted unsigned. */
  insecureDev: boolean;
  maxBodyBytes: number;
  /** Counts the bytes of bodies being read (reserveBodyBytes); none when omitted. */
  admission?: Pick<Admission, "reserveBodyBytes" | "releaseBodyBytes">;
  windowSeconds?: number;
}

const unauthorized = (reason: string) => new ApiError(401, "unauthorized", reason);

export function signatureAuth(options: AuthOptions): MiddlewareHandler<ServiceEnv> {
  if (options.secrets.length === 0 && !options.insecureDev) throw new Error("signatureAuth needs at least one secret");
  return async (c, next) => {
    let declaredSha256: string | undefined;
    if (options.secrets.length === 0) {
      const tenant = c.req.header(SIGNATURE_HEADERS.tenant) ?? "";
      if (!ID_PATTERN.test(tenant)) throw unauthorized(`insecure dev mode still needs a valid ${SIGNATURE_HEADERS.tenant} header`);
      c.set("tenant", tenant);
    } else {
      const checked = checkSignedHeaders(c.req.raw.headers, { windowSeconds: options.windowSeconds });
      if (!checked.ok) throw unauthorized(checked.reason);
      const url = new URL(c.req.url);
      const { signed } = checked;
      // The host as this worker was addressed: a request signed for another worker does not match.
      if (!(await verifySignature({ secrets: options.secrets, method: c.req.method, host: url.host, path: url.pathname + url.search, signed }))) {
        throw unauthorized("signature does not match");
      }
      declaredSha256 = signed.contentSha256;
      c.set("tenant", signed.tenant);
      c.set("signature", { value: signed.signature, timestamp: Number(signed.timestamp) });
    }

    const hash = createHash("sha256");
    let counted = 0;
    let body: Uint8Array;
    try {
      body = await readBody(c.req.raw, options.maxBodyBytes, (chunk) => {
        options.admission?.reserveBodyBytes(chunk.byteLength);
        counted += chunk.byteLength;
        hash.update(chunk);
      });
    } finally {
      options.admission?.releaseBodyBytes(counted);
    }
    if (declaredSha256 !== undefined && hash.digest("hex") !== declaredSha256) {
      throw unauthorized(`body does not match ${SIGNATURE_HEADERS.contentSha256}`);
    }
    c.set("body", body);
    await next();
  };
}

/** Refuses a signature used before on this worker (routes that write); no-op in insecure dev mode. */
export function refuseReplays(cache: ReplayCache): MiddlewareHandler<ServiceEnv> {
  return async (c, next) => {
    const signature = c.get("signature");
    if (signature) {
      const claim = cache.claim(signature.value, signature.timestamp);
      if (claim === "replayed") throw unauthorized("this signed request was already used; every write needs a freshly signed request");
      if (claim === "full") throw new ApiError(503, "overloaded", "too many recent writes to check for replays; retry shortly", { "retry-after": "5" });
    }
    await next();
  };
}
