import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { beforeAll, describe, expect, it } from "vitest";
import { freshBucket, s3TestClient } from "../../../test/support/s3.ts";
import { blobStoreContract } from "../../../test/support/blob-store-contract.ts";
import { S3Store } from "./s3-store.ts";

describe("S3Store (radosgw)", () => {
  let bucket: string;
  let n = 0;
  beforeAll(async () => {
    bucket = await freshBucket("s3-store");
  });
  // Each test gets its own prefix in one bucket: also exercises the store prefix.
  const makeStore = async (partSizeBytes?: number) =>
    new S3Store({ client: await s3TestClient(), bucket, prefix: `run/${++n}`, ...(partSizeBytes ? { partSizeBytes } : {}) });

  blobStoreContract(() => makeStore());

  it("uploads objects over the part size as multipart, from bytes and from a stream", async () => {
    const store = await makeStore(5 * 1024 * 1024);
    const big = new Uint8Array(randomBytes(12 * 1024 * 1024 + 123));
    await store.put("big/bytes.bin", big);
    const head = await store.head("big/bytes.bin");
    expect(head?.bytes).toBe(big.length);
    expect(head?.etag).toMatch(/-3"?$/); // a multipart etag ends in -<parts>
    expect(Buffer.from(await store.get("big/bytes.bin")).equals(big)).toBe(true);

    const chunks = Array.from({ length: 12 }, (_, i) => big.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024));
    await store.put("big/stream.bin", Readable.from(chunks), { bytes: 12 * 1024 * 1024 });
    expect((await store.head("big/stream.bin"))?.etag).toMatch(/-3"?$/);
    expect(Buffer.from(await store.get("big/stream.bin")).equals(big.subarray(0, 12 * 1024 * 1024))).toBe(true);
  });

  it("names the bucket when it does not exist", async () => {
    const store = new S3Store({ client: await s3TestClient(), bucket: "no-such-bucket-hypencoder" });
    await expect(store.get("x")).rejects.toThrow(/S3 bucket no-such-bucket-hypencoder does not exist/);
  });
});
