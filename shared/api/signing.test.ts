import { describe, expect, it } from "vitest";
import { checkSignedHeaders, SIGNATURE_HEADERS, signRequest, timingSafeEqual, verifyRequest, verifySignature } from "./signing.ts";

const SECRET = "s3cret-one";
const body = new TextEncoder().encode('{"tenant":"acme","query":"hello"}');
const NOW = 1_750_000_000;
const HOST = "gpu-worker-0.workers.example.com";

async function signed(overrides: Partial<Parameters<typeof signRequest>[0]> = {}) {
  return signRequest({ secret: SECRET, method: "POST", host: HOST, path: "/v1/search", tenant: "acme", body, now: NOW, ...overrides });
}

const verify = (headers: Record<string, string>, overrides: Partial<Parameters<typeof verifyRequest>[0]> = {}) =>
  verifyRequest({ secrets: SECRET, method: "POST", host: HOST, path: "/v1/search", headers, body, now: NOW, ...overrides });

describe("request signing", () => {
  it("accepts a valid signature and returns the signed tenant", async () => {
    expect(await verify(await signed())).toEqual({ ok: true, tenant: "acme" });
    // Headers objects work too, and the method's case does not matter.
    expect(await verify(await signed({ method: "post" }), { headers: new Headers(await signed()) })).toEqual({ ok: true, tenant: "acme" });
  });

  it("accepts a request with no body", async () => {
    const headers = await signRequest({ secret: SECRET, method: "GET", host: HOST, path: "/v1/builds/j1", tenant: "acme", now: NOW });
    expect(await verifyRequest({ secrets: SECRET, method: "GET", host: HOST, path: "/v1/builds/j1", headers, now: NOW })).toMatchObject({ ok: true });
  });

  it("refuses requests outside the ±60 s window", async () => {
    expect(await verify(await signed({ now: NOW - 61 }))).toEqual({ ok: false, reason: expect.stringContaining("expired") });
    expect(await verify(await signed({ now: NOW + 61 }))).toEqual({ ok: false, reason: expect.stringContaining("future") });
    expect(await verify(await signed({ now: NOW - 60 }))).toMatchObject({ ok: true });
    expect(await verify(await signed({ now: NOW - 10 }), { windowSeconds: 5 })).toMatchObject({ ok: false });
  });

  it("refuses tampered body, path, method and tenant", async () => {
    const headers = await signed();
    expect(await verify(headers, { body: new TextEncoder().encode('{"tenant":"acme","query":"other"}') })).toEqual({
      ok: false,
      reason: expect.stringContaining("body does not match"),
    });
    expect(await verify(headers, { path: "/v1/rerank" })).toEqual({ ok: false, reason: "signature does not match" });
    expect(await verify(headers, { path: "/v1/search?x=1" })).toEqual({ ok: false, reason: "signature does not match" });
    expect(await verify(headers, { method: "PUT" })).toEqual({ ok: false, reason: "signature does not match" });
    // Signed for one worker, refused by another (the host is signed; its case is not significant).
    expect(await verify(headers, { host: "gpu-worker-1.workers.example.com" })).toEqual({ ok: false, reason: "signature does not match" });
    expect(await verify(headers, { host: `${HOST}:8443` })).toEqual({ ok: false, reason: "signature does not match" });
    expect(await verify(headers, { host: HOST.toUpperCase() })).toMatchObject({ ok: true });
    expect(await verify({ ...headers, [SIGNATURE_HEADERS.tenant]: "other" })).toEqual({ ok: false, reason: "signature does not match" });
    // A consistent new body hash does not help without the secret.
    const other = await signed({ body: new Uint8Array([1, 2]) });
    expect(await verify({ ...headers, [SIGNATURE_HEADERS.contentSha256]: other[SIGNATURE_HEADERS.contentSha256] }, { body: new Uint8Array([1, 2]) })).toEqual({
      ok: false,
      reason: "signature does not match",
    });
  });

  it("refuses a wrong secret and supports key rotation", async () => {
    expect(await verify(await signed({ secret: "other" }))).toEqual({ ok: false, reason: "signature does not match" });
    expect(await verify(await signed({ secret: "new-key" }), { secrets: ["new-key", SECRET] })).toMatchObject({ ok: true });
    expect(await verify(await signed(), { secrets: ["new-key", SECRET] })).toMatchObject({ ok: true });
    expect(await verify(await signed(), { secrets: [] })).toMatchObject({ ok: false, reason: expect.stringContaining("no signing secret") });
  });

  it("names the missing or malformed header", async () => {
    const headers = await signed();
    for (const name of Object.values(SIGNATURE_HEADERS)) {
      const { [name]: _dropped, ...rest } = headers;
      expect(await verify(rest)).toEqual({ ok: false, reason: `missing header ${name}` });
    }
    expect(await verify({ ...headers, [SIGNATURE_HEADERS.timestamp]: "soon" })).toMatchObject({ ok: false, reason: expect.stringContaining("unix seconds") });
    expect(await verify({ ...headers, [SIGNATURE_HEADERS.signature]: "abc" })).toMatchObject({ ok: false, reason: expect.stringContaining("hex") });
    expect(await verify({ ...headers, [SIGNATURE_HEADERS.tenant]: "Bad Tenant" })).toMatchObject({ ok: false, reason: expect.stringContaining("tenant") });
  });

  it("checks the headers and the HMAC over the declared body hash without the body", async () => {
    const headers = await signed();
    const checked = checkSignedHeaders(headers, { now: NOW });
    expect(checked).toMatchObject({ ok: true, signed: { tenant: "acme" } });
    if (!checked.ok) return;
    expect(await verifySignature({ secrets: [SECRET], method: "POST", host: HOST, path: "/v1/search", signed: checked.signed })).toBe(true);
    expect(await verifySignature({ secrets: ["other"], method: "POST", host: HOST, path: "/v1/search", signed: checked.signed })).toBe(false);
    expect(checkSignedHeaders({}, { now: NOW })).toEqual({ ok: false, reason: `missing header ${SIGNATURE_HEADERS.timestamp}` });
  });

  it("refuses to sign for an invalid tenant id", async () => {
    await expect(signed({ tenant: "../x" })).rejects.toThrow(/tenant id/);
  });

  it("compares in constant time over equal lengths", () => {
    expect(timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
    expect(timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(timingSafeEqual(new Uint8Array([1]), new Uint8Array([1, 2]))).toBe(false);
  });
});
