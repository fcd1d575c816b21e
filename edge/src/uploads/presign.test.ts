/**
 * Presigned PUTs against the real S3 of infra/s3 (Ceph radosgw, which checks SigV4): what the URL
 * allows, and that S3 itself refuses everything it should. Skipped when S3_ENDPOINT is not bound.
 */
import { CreateBucketCommand, HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { presignPut } from "./presign.ts";
import { createS3Client, s3SettingsFromEnv } from "./s3-client.ts";

const bindings = env as unknown as Record<string, string | undefined>;
const hasS3 = Boolean(bindings.S3_ENDPOINT);

async function hex(algorithm: string, bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest(algorithm, bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe.skipIf(!hasS3)("presigned PUT against radosgw", () => {
  let client: S3Client;
  let bucket: string;
  const body = new TextEncoder().encode('{"id":"d1","text":"hello"}\n');
  const other = new TextEncoder().encode('{"id":"d1","text":"HELLO"}\n');

  beforeAll(async () => {
    bucket = `edge-presign-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6)}`;
    const settings = s3SettingsFromEnv({ ...bindings, S3_BUCKET: bucket });
    client = createS3Client(settings);
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  });

  const put = (url: string, headers: Record<string, string>, data: Uint8Array) =>
    fetch(url, { method: "PUT", headers, body: data }).then(async (r) => ({ status: r.status, text: await r.text() }));

  it("probe sha256", async () => {
    const p = await presignPut(client, { bucket, key: "probe/sha", bytes: body.length, sha256: await hex("SHA-256", body), expiresInSeconds: 60 });
    console.log(p.url, p.headers);
    console.log("sha256 wrong body:", await put(p.url, p.headers, other));
    console.log("sha256 right body:", await put(p.url, p.headers, body));
  });
  it("probe md5", async () => {
    const p = await presignPut(client, { bucket, key: "probe/md5", bytes: body.length, md5: await hex("MD5", body), expiresInSeconds: 60 });
    console.log(p.url, p.headers);
    console.log("md5 wrong body:", await put(p.url, p.headers, other));
    console.log("md5 right body:", await put(p.url, p.headers, body));
    console.log(await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "probe/md5" })));
  });
});
