import { describe, expect, it } from "vitest";
import { API_KEY_PATTERN, generateApiKey, hashApiKey, KEY_ID_PATTERN } from "./api-key.ts";
import { bearerToken } from "./bearer.ts";
import { secretsEqual } from "./require-admin.ts";

describe("API keys", () => {
  it("generates distinct keys in the documented format, with their hash and display prefix", async () => {
    const a = await generateApiKey();
    const b = await generateApiKey();
    expect(a.key).toMatch(API_KEY_PATTERN);
    expect(a.id).toMatch(KEY_ID_PATTERN);
    expect(a.key).not.toBe(b.key);
    expect(a.id).not.toBe(b.id);
    expect(a.prefix).toBe(a.key.slice(0, 12));
    expect(a.keyHash).toBe(await hashApiKey(a.key));
    expect(a.keyHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("hashes with SHA-256", async () => {
    // sha256("abc"), the FIPS 180-2 test vector.
    expect(await hashApiKey("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("reads bearer tokens strictly", () => {
    expect(bearerToken("Bearer hyp_x")).toBe("hyp_x");
    expect(bearerToken("bearer   hyp_x ")).toBe("hyp_x");
    expect(bearerToken("Basic abc")).toBeUndefined();
    expect(bearerToken("Bearer a b")).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it("compares secrets of any length", async () => {
    expect(await secretsEqual("s3cret", "s3cret")).toBe(true);
    expect(await secretsEqual("s3cret", "s3cres")).toBe(false);
    expect(await secretsEqual("s3cret", "s3cret-longer")).toBe(false);
    expect(await secretsEqual("", "s3cret")).toBe(false);
  });
});
