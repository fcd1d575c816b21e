/** The real S3 (infra/s3 radosgw) as the edge tests see it through bindings. */
import { CreateBucketCommand, type S3Client } from "@aws-sdk/client-s3";
import { env } from "cloudflare:test";
import { createS3Client, s3SettingsFromEnv } from "../src/uploads/s3-client.ts";

export const s3Bindings = env as unknown as Record<string, string | undefined>;
// vitest.config.ts starts the local radosgw when none is configured, so S3 is always there.
if (!s3Bindings.S3_ENDPOINT) throw new Error("S3_ENDPOINT binding missing: vitest.config.ts should have started infra/s3");

export async function hexDigest(algorithm: "SHA-256" | "MD5", bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest(algorithm, bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A fresh bucket on the test S3, and a client for it. */
export async function freshBucket(): Promise<{ client: S3Client; bucket: string }> {
  const bucket = `edge-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
  const client = createS3Client(s3SettingsFromEnv({ ...s3Bindings, S3_BUCKET: bucket }));
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return { client, bucket };
}

