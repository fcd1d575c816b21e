/**
 * The dev stack's zero-setup S3: s3rver, in-process, storing objects under a folder so the demo
 * index survives restarts.
 *
 * s3rver does NOT verify SigV4 signatures: presigned URLs are not enforced here. Tests that check
 * signatures (tampered or expired URLs) run against Ceph radosgw (infra/s3/), never against this.
 */
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import type { S3Settings } from "./stack.ts";

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

/** s3rver's built-in account; it accepts nothing else. */
const S3RVER_KEY = "S3RVER";

export interface EmbeddedS3 {
  settings: S3Settings;
  close(): Promise<void>;
}

export async function startEmbeddedS3(options: { directory: string; port: number; bucket: string }): Promise<EmbeddedS3> {
  await mkdir(options.directory, { recursive: true });
  // s3rver is CommonJS without types.
  const S3rver = createRequire(import.meta.url)("s3rver") as S3rverConstructor;
  const server = new S3rver({
    address: "127.0.0.1",
    port: options.port,
    directory: options.directory,
    silent: true,
    vhostBuckets: false,
    configureBuckets: [{ name: options.bucket }],
  });
  const { port } = await server.run();
  return {
    settings: {
      endpoint: `http://127.0.0.1:${port}`,
      region: "us-east-1",
      accessKeyId: S3RVER_KEY,
      secretAccessKey: S3RVER_KEY,
      bucket: options.bucket,
    },
    close: () => server.close(),
  };
}
