import { describe, expect, it } from "vitest";
import { IndexFormatError } from "./errors.ts";
import {
  formatVersion,
  indexVersionsPrefix,
  manifestKey,
  parseVersion,
  shardKey,
  shardRelativeKey,
  uploadPrefix,
  validateId,
  versionPrefix,
  versionsFromListing,
} from "./keys.ts";

describe("index keys", () => {
  it("lays out versions, manifests, shards and uploads", () => {
    expect(versionPrefix("acme", "docs", 1)).toBe("tenants/acme/indexes/docs/versions/v000001/");
    expect(manifestKey("acme", "docs", 12)).toBe("tenants/acme/indexes/docs/versions/v000012/manifest.json");
    expect(shardKey("acme", "docs", 3, "s0007")).toBe("tenants/acme/indexes/docs/versions/v000003/shards/s0007.hxs");
    expect(shardRelativeKey("s0")).toBe("shards/s0.hxs");
    expect(uploadPrefix("acme", "up-1")).toBe("tenants/acme/uploads/up-1/");
  });

  it("rejects ids that could escape or collide", () => {
    for (const bad of ["", "..", "a/b", "A", "-a", "_a", "a.b", "x".repeat(64), "a b"]) {
      expect(() => validateId(bad, "tenant")).toThrow(IndexFormatError);
    }
    expect(() => versionPrefix("../x", "docs", 1)).toThrow(/invalid tenant id "..\/x"/);
    expect(() => versionPrefix("t", "docs", 0)).toThrow(/invalid index version 0/);
    expect(validateId("a".repeat(63), "index")).toHaveLength(63);
  });

  it("formats and parses versions one-to-one", () => {
    expect(formatVersion(1_234_567)).toBe("v1234567");
    expect(parseVersion("v000042")).toBe(42);
    expect(parseVersion("v1234567")).toBe(1_234_567);
    for (const bad of ["v42", "v0000042", "v000000", "000001", "v00000x"]) expect(parseVersion(bad)).toBeUndefined();
  });

  it("finds the versions that have a manifest in a listing", () => {
    const p = indexVersionsPrefix("t", "i");
    const keys = [
      `${p}v000002/manifest.json`,
      `${p}v000002/shards/s0.hxs`,
      `${p}v000010/manifest.json`,
      `${p}v000011/shards/s0.hxs`, // build in progress: not a version yet
      `${p}v000001/manifest.json`,
      `${p}junk/manifest.json`,
      "tenants/t/indexes/other/versions/v000005/manifest.json",
    ];
    expect(versionsFromListing(keys, "t", "i")).toEqual([1, 2, 10]);
  });
});
