/**
 * The edge's S3 client (uploads presign PUTs; builds HEAD the uploaded objects and read manifests).
 * Settings come from bindings (vars and secrets), validated once per isolate: a missing or malformed
 * setting is a 503 "storage not configured", never an SDK error deep inside a request.
 */
import { S3Client } from "@aws-sdk/client-s3";
import { z } from "zod";
import type { S3Bindings } from "../env.ts";

const settingsSchema = z.object({
  S3_ENDPOINT: z.url().optional(),
  S3_REGION: z.string().min(1).default("us-east-1"),
  S3_ACCESS_KEY_ID: z.string().min(1),
  S3_SECRET_ACCESS_KEY: z.string().min(1),
  S3_BUCKET: z.string().min(3).max(63),
});

export interface S3Settings {
  endpoint?: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}

export class S3NotConfiguredError extends Error {
  override name = "S3NotConfiguredError";
}

/** Reads the S3_* bindings; throws S3NotConfiguredError naming the bad settings (never their values). */
export function s3SettingsFromEnv(env: S3Bindings): S3Settings {
  const present = Object.fromEntries(Object.entries(env).filter(([k, v]) => k.startsWith("S3_") && typeof v === "string" && v !== ""));
  const parsed = settingsSchema.safeParse(present);
  if (!parsed.success) {
    throw new S3NotConfiguredError(`object storage is not configured: ${parsed.error.issues.map((i) => i.path.join(".")).join(", ")}`);
  }
  const e = parsed.data;
  return { endpoint: e.S3_ENDPOINT, region: e.S3_REGION, accessKeyId: e.S3_ACCESS_KEY_ID, secretAccessKey: e.S3_SECRET_ACCESS_KEY, bucket: e.S3_BUCKET };
}

export function createS3Client(settings: S3Settings): S3Client {
  return new S3Client({
    region: settings.region,
    // radosgw, MinIO and R2 are addressed path-style (http://host/bucket/key); so is AWS with a custom endpoint.
    forcePathStyle: true,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    // Otherwise the SDK signs a CRC32 of an EMPTY body into every presigned PUT (the real body
    // then fails the check) and adds checksum trailers that S3-compatible stores mishandle.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

let cached: { fingerprint: string; client: S3Client } | undefined;

/** The client for these bindings, built once per isolate (bindings do not change within one). */
export function s3ClientFor(env: S3Bindings): { client: S3Client; settings: S3Settings } {
  const settings = s3SettingsFromEnv(env);
  const fingerprint = JSON.stringify(settings);
  if (cached?.fingerprint !== fingerprint) cached = { fingerprint, client: createS3Client(settings) };
  return { client: cached.client, settings };
}
