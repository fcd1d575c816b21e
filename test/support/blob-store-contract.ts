/**
 * The behaviour every BlobStore must have, as one test suite run against each
 * implementation (local-store.test.ts, s3-store.test.ts), so the two cannot drift apart.
 * Test-only: imported by *.test.ts files.
 */
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { expect, it } from "vitest";
import { AlreadyExistsError, NotFoundError, type BlobStore } from "../../gpu-worker/src/store/blob-store.ts";

export function blobStoreContract(makeStore: () => Promise<BlobStore>): void {
  it("puts, gets, streams and heads objects", async () => {
    const store = await makeStore();
    const body = new TextEncoder().encode("hello, shard");
    await store.put("tenants/a/indexes/i/versions/v000001/manifest.json", body, { contentType: "application/json" });
    expect(new Uint8Array(await store.get("tenants/a/indexes/i/versions/v000001/manifest.json"))).toEqual(body);
    const stream = await store.getStream("tenants/a/indexes/i/versions/v000001/manifest.json");
    expect(new Uint8Array(await buffer(stream))).toEqual(body);
    const head = await store.head("tenants/a/indexes/i/versions/v000001/manifest.json");
    expect(head?.bytes).toBe(body.length);
    expect(head?.etag).toBeTruthy();
    expect(await store.head("tenants/a/nothing")).toBeUndefined();
  });

  it("replaces objects whole and accepts stream bodies", async () => {
    const store = await makeStore();
    await store.put("k/x", new Uint8Array([1, 2, 3]));
    await store.put("k/x", Readable.from([Buffer.from([4, 5]), Buffer.from([6, 7, 8])]), { bytes: 5 });
    expect(Array.from(await store.get("k/x"))).toEqual([4, 5, 6, 7, 8]);
    await expect(store.put("k/y", Readable.from([Buffer.from([1])]), { bytes: 2 })).rejects.toThrow(/gave 1 bytes, expected 2/);
    expect(await store.head("k/y")).toBeUndefined();
  });

  it("creates with ifAbsent only when the key is free: of concurrent creators exactly one wins", async () => {
    const store = await makeStore();
    const bodies = Array.from({ length: 6 }, (_, i) => new TextEncoder().encode(`manifest from builder ${i}`));
    const outcomes = await Promise.allSettled(bodies.map((b) => store.put("v/manifest.json", b, { ifAbsent: true })));
    const winners = outcomes.flatMap((o, i) => (o.status === "fulfilled" ? [i] : []));
    expect(winners).toHaveLength(1);
    for (const o of outcomes) {
      if (o.status === "rejected") {
        expect(o.reason).toBeInstanceOf(AlreadyExistsError);
        expect((o.reason as Error).message).toMatch(/^already exists: v\/manifest\.json in /);
      }
    }
    expect(new TextDecoder().decode(await store.get("v/manifest.json"))).toBe(`manifest from builder ${winners[0]}`);
    // A later creator is refused too, and a plain put still replaces.
    await expect(store.put("v/manifest.json", new Uint8Array(1), { ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);
    await store.put("v/manifest.json", new Uint8Array([9]));
    expect(Array.from(await store.get("v/manifest.json"))).toEqual([9]);
    expect(await store.list("v/")).toEqual(["v/manifest.json"]); // no temp files left behind
  });

  it("throws NotFoundError for a missing object, from get and getStream", async () => {
    const store = await makeStore();
    await expect(store.get("missing/object")).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.getStream("missing/object")).rejects.toThrow(/not found: missing\/object in /);
  });

  it("lists by plain string prefix, sorted, and deletes objects and prefixes", async () => {
    const store = await makeStore();
    const keys = ["p/a/1", "p/a/2", "p/ab/3", "p/b/4", "q/5"];
    for (const k of keys) await store.put(k, new TextEncoder().encode(k));
    expect(await store.list("p/a/")).toEqual(["p/a/1", "p/a/2"]);
    expect(await store.list("p/a")).toEqual(["p/a/1", "p/a/2", "p/ab/3"]);
    expect(await store.list("p/")).toEqual(["p/a/1", "p/a/2", "p/ab/3", "p/b/4"]);
    expect(await store.list("")).toEqual(keys);
    expect(await store.list("nope/")).toEqual([]);
    await store.delete("p/a/1");
    await store.delete("p/a/1"); // missing: not an error
    expect(await store.list("p/a/")).toEqual(["p/a/2"]);
    expect(await store.deletePrefix("p/")).toBe(3);
    expect(await store.list("")).toEqual(["q/5"]);
  });

  it("refuses keys that are not clean relative paths", async () => {
    const store = await makeStore();
    for (const bad of ["../etc/passwd", "a/../../b", "/abs", "a//b", "a/./b", "a\\b", "", "trailing/"]) {
      await expect(store.put(bad, new Uint8Array(1))).rejects.toThrow(/invalid key/);
      await expect(store.get(bad)).rejects.toThrow(/invalid key/);
    }
    await expect(store.list("../")).rejects.toThrow(/invalid prefix/);
  });
}
