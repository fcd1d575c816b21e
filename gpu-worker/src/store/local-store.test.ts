import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { blobStoreContract } from "../../../test/support/blob-store-contract.ts";
import { LocalStore } from "./local-store.ts";
import { openStore } from "./open-store.ts";
import { S3Store } from "./s3-store.ts";

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "local-store-"));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("LocalStore", () => {
  blobStoreContract(async () => new LocalStore(await freshDir()));

  it("stores keys as paths, leaves no temp files and prunes emptied folders", async () => {
    const root = await freshDir();
    const store = new LocalStore(root);
    await store.put("a/b/c.bin", new Uint8Array([9]));
    expect(await readdir(join(root, "a", "b"))).toEqual(["c.bin"]);
    expect(await readdir(join(root, ".hypencoder-tmp"))).toEqual([]);
    expect(await store.list("")).toEqual(["a/b/c.bin"]); // the temp folder is not a key
    await store.delete("a/b/c.bin");
    expect(await readdir(root)).toEqual([".hypencoder-tmp"]);
    await expect(store.put(".hypencoder-tmp/x", new Uint8Array(1))).rejects.toThrow(/reserved/);
  });
});

describe("openStore", () => {
  it("opens folders and s3:// locations", async () => {
    const root = await freshDir();
    expect(openStore(root)).toBeInstanceOf(LocalStore);
    expect(openStore(`file://${root}`).describe()).toBe(root);
    const s3 = openStore("s3://my-bucket/some/prefix/", { S3_ENDPOINT: "http://127.0.0.1:1", S3_ACCESS_KEY_ID: "a", S3_SECRET_ACCESS_KEY: "b" });
    expect(s3).toBeInstanceOf(S3Store);
    expect(s3.describe()).toBe("s3://my-bucket/some/prefix/");
    expect(() => openStore("gs://bucket/x")).toThrow(/unsupported store location/);
    expect(() => openStore("s3:///x")).toThrow(/has no bucket/);
  });
});
