/**
 * One string names a store: "s3://bucket/prefix" (credentials and endpoint from the S3_*
 * environment variables) or a local folder path (or file:// URL). A local folder works as
 * an index store exactly like an S3 prefix: same keys, same atomic puts.
 */
import { fileURLToPath } from "node:url";
import type { BlobStore } from "./blob-store.ts";
import { LocalStore } from "./local-store.ts";
import { createS3Client, s3ConfigFromEnv, S3Store } from "./s3-store.ts";

export function openStore(location: string, env: NodeJS.ProcessEnv = process.env): BlobStore {
  if (!location) throw new Error("store location is empty: expected s3://bucket/prefix or a folder path");
  if (location.startsWith("s3://")) {
    const rest = location.slice("s3://".length);
    const slash = rest.indexOf("/");
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = slash < 0 ? "" : rest.slice(slash + 1);
    if (!bucket) throw new Error(`store location ${JSON.stringify(location)} has no bucket: expected s3://bucket/prefix`);
    return new S3Store({ client: createS3Client(s3ConfigFromEnv(env)), bucket, prefix });
  }
  if (location.startsWith("file://")) return new LocalStore(fileURLToPath(location));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw new Error(`unsupported store location ${JSON.stringify(location)}: expected s3://bucket/prefix or a folder path`);
  }
  return new LocalStore(location);
}
