/**
 * Request signing between the edge and the GPU worker: HMAC-SHA256 with a shared secret over a
 * canonical string of the request. The edge signs (Cloudflare Workers), the worker verifies (Node);
 * so this file uses WebCrypto only, no `node:` imports.
 *
 * Canonical string (lines joined with "\n"):
 *
 *   HYP2-HMAC-SHA256
 *   <METHOD, upper case>
 *   <host the request is sent to, as URL.host gives it: lower case, port only when not the default>
 *   <path with query string, exactly as sent, e.g. /v1/search?x=1>
 *   <timestamp: unix seconds, decimal>
 *   <tenant id>
 *   <hex sha256 of the body bytes (of zero bytes when there is no body)>
 *
 * The signature is the lowercase hex HMAC of that string. Because the body hash is signed, the body
 * cannot be swapped; because the timestamp is signed and checked against a window, a captured request
 * can only be replayed within that window, and because the host is signed, only against the worker it
 * was meant for (the worker also refuses a second use of a signature on routes that write: its replay
 * cache, gpu-worker/src/service/replay-cache.ts).
 *
 * Verification has two steps, so that a worker reads no body byte of an unauthenticated request:
 * `checkSignedHeaders` (the window, the tenant, the header formats) and `verifySignature` (the HMAC,
 * over the *declared* body hash) need only the headers; the body is then hashed while it streams in
 * and compared with the declared hash. `verifyRequest` does all of it for a body already in memory.
 */
import { ID_PATTERN } from "./worker-api.ts";

export const SIGNATURE_HEADERS = {
  timestamp: "x-hyp-timestamp",
  tenant: "x-hyp-tenant",
  contentSha256: "x-hyp-content-sha256",
  signature: "x-hyp-signature",
} as const;

export const SIGNATURE_SCHEME = "HYP2-HMAC-SHA256";
export const DEFAULT_WINDOW_SECONDS = 60;

export type SignatureHeaders = Record<(typeof SIGNATURE_HEADERS)[keyof typeof SIGNATURE_HEADERS], string>;

export interface SignRequestInput {
  secret: string;
  method: string;
  /** The target's host (URL.host: host name, and port when not the default), as the worker will see it. */
  host: string;
  /** Path plus query string, as the worker will see it. */
  path: string;
  tenant: string;
  body?: Uint8Array;
  /** Unix seconds; defaults to the clock. */
  now?: number;
}

export interface VerifyRequestInput {
  /** One secret, or several during key rotation: a signature by any of them is accepted. */
  secrets: string | readonly string[];
  method: string;
  /** The host the request arrived for (URL.host). */
  host: string;
  path: string;
  /** Header lookup: a Headers object, or a plain map with lower-case names. */
  headers: Headers | Record<string, string | undefined>;
  body?: Uint8Array;
  now?: number;
  windowSeconds?: number;
}

export type VerifyResult = { ok: true; tenant: string } | { ok: false; reason: string };

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);
const HEX_SHA256 = /^[0-9a-f]{64}$/;
const TIMESTAMP = /^[0-9]{1,12}$/;

function toHex(bytes: ArrayBuffer): string {
  let hex = "";
  for (const b of new Uint8Array(bytes)) hex += b.toString(16).padStart(2, "0");
  return hex;
}

function fromHex(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

export async function sha256Hex(body: Uint8Array): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", body as Uint8Array<ArrayBuffer>));
}

export function canonicalString(method: string, host: string, path: string, timestamp: string, tenant: string, bodySha256: string): string {
  return [SIGNATURE_SCHEME, method.toUpperCase(), host.toLowerCase(), path, timestamp, tenant, bodySha256].join("\n");
}

async function hmac(secret: string, message: string): Promise<Uint8Array> {
  if (secret.length === 0) throw new Error("signing secret must not be empty");
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
}

/**
 * Compares two byte strings in time that depends only on their lengths, so a forger cannot learn
 * a valid signature byte by byte from response times.
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export async function signRequest(input: SignRequestInput): Promise<SignatureHeaders> {
  if (!ID_PATTERN.test(input.tenant)) throw new Error(`tenant id must match ${ID_PATTERN.source}`);
  const timestamp = String(Math.floor(input.now ?? Date.now() / 1000));
  const bodySha256 = await sha256Hex(input.body ?? EMPTY);
  const signature = await hmac(input.secret, canonicalString(input.method, input.host, input.path, timestamp, input.tenant, bodySha256));
  return {
    [SIGNATURE_HEADERS.timestamp]: timestamp,
    [SIGNATURE_HEADERS.tenant]: input.tenant,
    [SIGNATURE_HEADERS.contentSha256]: bodySha256,
    [SIGNATURE_HEADERS.signature]: toHex(signature.buffer as ArrayBuffer),
  };
}

function headerGetter(headers: VerifyRequestInput["headers"]): (name: string) => string | undefined {
  if (typeof (headers as Headers).get === "function") return (name) => (headers as Headers).get(name) ?? undefined;
  return (name) => (headers as Record<string, string | undefined>)[name];
}

/** The signature headers, checked for format, window and tenant (no secret needed, no body read). */
export interface SignedHeaders {
  timestamp: string;
  tenant: string;
  contentSha256: string;
  signature: string;
}

export type HeaderCheck = { ok: true; signed: SignedHeaders } | { ok: false; reason: string };

/**
 * The first step: every signature header present and well-formed, the timestamp within the window.
 * Reasons are safe to return to the caller.
 */
export function checkSignedHeaders(
  headers: VerifyRequestInput["headers"],
  options: { now?: number; windowSeconds?: number } = {},
): HeaderCheck {
  const get = headerGetter(headers);
  const values: Partial<Record<keyof typeof SIGNATURE_HEADERS, string>> = {};
  for (const [field, name] of Object.entries(SIGNATURE_HEADERS) as Array<[keyof typeof SIGNATURE_HEADERS, string]>) {
    const value = get(name);
    if (value === undefined || value === "") return { ok: false, reason: `missing header ${name}` };
    values[field] = value;
  }
  const signed = values as SignedHeaders;
  if (!TIMESTAMP.test(signed.timestamp)) return { ok: false, reason: `${SIGNATURE_HEADERS.timestamp} must be unix seconds` };
  const now = options.now ?? Date.now() / 1000;
  const window = options.windowSeconds ?? DEFAULT_WINDOW_SECONDS;
  const skew = Number(signed.timestamp) - now;
  if (skew < -window) return { ok: false, reason: `request expired: signed more than ${window} s ago` };
  if (skew > window) return { ok: false, reason: `request timestamp is more than ${window} s in the future` };
  if (!ID_PATTERN.test(signed.tenant)) return { ok: false, reason: `${SIGNATURE_HEADERS.tenant} must match ${ID_PATTERN.source}` };
  if (!HEX_SHA256.test(signed.contentSha256)) return { ok: false, reason: `${SIGNATURE_HEADERS.contentSha256} must be 64 lowercase hex digits` };
  if (!HEX_SHA256.test(signed.signature)) return { ok: false, reason: `${SIGNATURE_HEADERS.signature} must be 64 lowercase hex digits` };
  return { ok: true, signed };
}

/**
 * The second step: the HMAC over the request line and the declared body hash, by any of `secrets`.
 * It proves who sent the headers; the body itself must still be checked against `contentSha256`.
 */
export async function verifySignature(input: {
  secrets: string | readonly string[];
  method: string;
  host: string;
  path: string;
  signed: SignedHeaders;
}): Promise<boolean> {
  const secrets = (typeof input.secrets === "string" ? [input.secrets] : input.secrets).filter((s) => s.length > 0);
  const { timestamp, tenant, contentSha256, signature } = input.signed;
  const message = canonicalString(input.method, input.host, input.path, timestamp, tenant, contentSha256);
  const given = fromHex(signature);
  let match = false;
  // Try every secret (no early exit), so timing does not reveal which key of a rotation matched.
  for (const secret of secrets) {
    if (timingSafeEqual(await hmac(secret, message), given)) match = true;
  }
  return match;
}

/** Checks a signed request whose body is in memory; the reason on failure is safe to return to the caller (it holds no secret). */
export async function verifyRequest(input: VerifyRequestInput): Promise<VerifyResult> {
  const secrets = (typeof input.secrets === "string" ? [input.secrets] : input.secrets).filter((s) => s.length > 0);
  if (secrets.length === 0) return { ok: false, reason: "no signing secret is configured" };
  const checked = checkSignedHeaders(input.headers, input);
  if (!checked.ok) return checked;
  const { signed } = checked;
  // The body hash is not secret, but checking it separately gives a precise reason for a mangled body.
  if ((await sha256Hex(input.body ?? EMPTY)) !== signed.contentSha256) {
    return { ok: false, reason: `body does not match ${SIGNATURE_HEADERS.contentSha256}` };
  }
  const match = await verifySignature({ secrets, method: input.method, host: input.host, path: input.path, signed });
  return match ? { ok: true, tenant: signed.tenant } : { ok: false, reason: "signature does not match" };
}
