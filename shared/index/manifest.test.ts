import { describe, expect, it } from "vitest";
import { IndexFormatError } from "./errors.ts";
import { coveredSeqOf, manifestKeyBase, parseIndexManifest, serializeIndexManifest, shardForRow, type IndexManifest } from "./manifest.ts";

function sampleManifest(): IndexManifest {
  return {
    format: "hypencoder.index",
    version: 1,
    tenant: "acme",
    index: "docs",
    indexVersion: 3,
    createdAt: "2025-01-02T03:04:05.678Z",
    model: { id: "a".repeat(64), embeddingDim: 768 },
    dtype: "float16",
    docCount: 250,
    graph: { metric: "l2", degree: 32, builder: "usearch-hnsw", reachableFraction: 0.998 },
    fields: ["text", "title", "metadata"],
    shards: [
      { id: "s0000", key: "shards/s0000.hxs", bytes: 1000, sha256: "b".repeat(64), docStart: 0, docCount: 100 },
      { id: "s0001", key: "shards/s0001.hxs", bytes: 1500, sha256: "c".repeat(64), docStart: 100, docCount: 150 },
    ],
  };
}

function refused(value: unknown): string {
  try {
    parseIndexManifest(value, "m.json");
  } catch (e) {
    expect(e).toBeInstanceOf(IndexFormatError);
    return (e as Error).message;
  }
  throw new Error("expected the manifest to be refused");
}

describe("index manifest", () => {
  it("accepts a valid manifest and round-trips through its JSON text", () => {
    const m = sampleManifest();
    expect(parseIndexManifest(serializeIndexManifest(m))).toEqual(m);
    expect(parseIndexManifest({ ...m, docCount: 0, shards: [] }).shards).toEqual([]);
  });

  it("requires contiguous shards whose counts add up, with unique ids and keys", () => {
    const m = sampleManifest();
    expect(refused({ ...m, shards: [m.shards[0], { ...m.shards[1], docStart: 101 }] })).toMatch(
      /index manifest m\.json: shards\.1\.docStart: expected 100 \(shards must be contiguous from 0, in order\), got 101/,
    );
    expect(refused({ ...m, docCount: 251 })).toMatch(/docCount: is 251 but the shards hold 250 documents/);
    expect(refused({ ...m, shards: [m.shards[0], { ...m.shards[1], id: "s0000" }] })).toMatch(/duplicate shard id "s0000"/);
    expect(refused({ ...m, shards: [m.shards[0], { ...m.shards[1], key: m.shards[0].key }] })).toMatch(/duplicate shard key/);
    expect(refused({ ...m, fields: ["text", "text"] })).toMatch(/duplicate field "text"/);
  });

  it("names the bad field", () => {
    const m = sampleManifest();
    expect(refused({ ...m, model: { ...m.model, id: "xyz" } })).toMatch(/model\.id: expected 64 lowercase hex digits/);
    expect(refused({ ...m, shards: [{ ...m.shards[0], key: "../../other/s.hxs" }, m.shards[1]] })).toMatch(/shards\.0\.key/);
    expect(refused({ ...m, graph: { ...m.graph, reachableFraction: 1.5 } })).toMatch(/graph\.reachableFraction/);
    expect(refused({ ...m, tenant: "Acme" })).toMatch(/tenant/);
    expect(refused({ ...m, version: 3 })).toMatch(/unsupported index format version 3; this reader reads versions 1 and 2/);
    expect(refused("{")).toMatch(/not valid JSON/);
  });

  it("reads format 2: deletion bitmaps (only there, at most docCount rows) and coveredSeq", () => {
    const m = sampleManifest();
    const deletes = { key: "versions/v000004/deletes/s0000.hxd", bytes: 37, sha256: "d".repeat(64), count: 3 };
    const v2 = { ...m, version: 2 as const, indexVersion: 4, coveredSeq: 17, shards: [{ ...m.shards[0]!, key: `versions/v000003/${m.shards[0]!.key}`, deletes }, m.shards[1]!] };
    const parsed = parseIndexManifest(serializeIndexManifest(v2));
    expect(parsed.shards[0]!.deletes).toEqual(deletes);
    expect(coveredSeqOf(parsed)).toBe(17);
    expect(coveredSeqOf(m)).toBe(0);
    expect(refused({ ...v2, version: 1 })).toMatch(/shards\.0\.deletes: deletion bitmaps need format version 2/);
    expect(refused({ ...v2, shards: [{ ...v2.shards[0]!, deletes: { ...deletes, count: 101 } }, v2.shards[1]] })).toMatch(/more than the segment's 100 rows/);
  });

  it("resolves keys against the version prefix (format 1) or the index prefix (format 2)", () => {
    const at = "tenants/acme/indexes/docs/versions/v000004/";
    expect(manifestKeyBase({ version: 1 }, at)).toBe(at);
    expect(manifestKeyBase({ version: 2 }, at)).toBe("tenants/acme/indexes/docs/");
    expect(manifestKeyBase({ version: 2 }, "versions/v000004/")).toBe("");
    expect(() => manifestKeyBase({ version: 2 }, "")).toThrow(IndexFormatError);
    expect(() => manifestKeyBase({ version: 2 }, "some/folder/")).toThrow(/must be read from <index>\/versions\/<vNNNNNN>\//);
  });

  it("maps global rows to shards", () => {
    const m = sampleManifest();
    expect(shardForRow(m, 0)).toEqual({ shard: m.shards[0], localRow: 0 });
    expect(shardForRow(m, 99).shard.id).toBe("s0000");
    expect(shardForRow(m, 100)).toEqual({ shard: m.shards[1], localRow: 0 });
    expect(shardForRow(m, 249).localRow).toBe(149);
    expect(() => shardForRow(m, 250)).toThrow(RangeError);
  });
});
