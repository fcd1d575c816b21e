import { DeleteBucketPolicyCommand, HeadObjectCommand, PutBucketPolicyCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { ApiError } from "../errors.ts";
import { freshBucket, s3Bindings } from "../../test/s3.ts";
import { verifyUploadedFiles } from "./verify-upload.ts";

/**
 * An identity that may GetObject but not ListBucket, as the edge's AWS policy grants
 * (infra/s3-policies/edge-policy.json): radosgw then answers a HEAD of a missing key with 403, as AWS
 * does. Here that identity is the anonymous caller, with a bucket policy granting it s3:GetObject only.
 */
async function bucketReadableWithoutList(): Promise<{ owner: S3Client; reader: S3Client; bucket: string }> {
  const { client: owner, bucket } = await freshBucket();
  await owner.send(
    new PutBucketPolicyCommand({
      Bucket: bucket,
      Policy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${bucket}/*` }],
      }),
    }),
  );
  const reader = new S3Client({
    region: s3Bindings.S3_REGION ?? "us-east-1",
    endpoint: s3Bindings.S3_ENDPOINT,
    forcePathStyle: true,
    credentials: { accessKeyId: "", secretAccessKey: "" },
    signer: { sign: async (request) => request },
  });
  return { owner, reader, bucket };
}

const file = (name: string, bytes = 5) => ({ name, key: `tenants/t/uploads/u/${name}`, bytes });

describe("verifyUploadedFiles", () => {
  it("answers 503 storage_unavailable with Retry-After when S3 does not answer, not a 500", async () => {
    // Nothing listens on port 9 (discard): the HEAD fails with a network error, as when S3 is down.
    const unreachable = new S3Client({
      region: "us-east-1",
      endpoint: "http://127.0.0.1:9",
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: { accessKeyId: "k", secretAccessKey: "s" },
    });
    const error = await verifyUploadedFiles(unreachable, "b", [file("a.jsonl")]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 503, code: "storage_unavailable", headers: { "retry-after": "5" } });
  });

  it("treats a 403 on HEAD (no ListBucket permission) as 'not uploaded', a 409, like a 404", async () => {
    const { owner, reader, bucket } = await bucketReadableWithoutList();
    try {
      await owner.send(new PutObjectCommand({ Bucket: bucket, Key: file("there.jsonl").key, Body: "hello" }));
      // The store really answers 403 for the missing key to this identity (the case under test), 404 to the owner.
      const statusOf = (client: S3Client) =>
        client.send(new HeadObjectCommand({ Bucket: bucket, Key: file("missing.jsonl").key })).then(
          () => 200,
          (error: { $metadata?: { httpStatusCode?: number } }) => error.$metadata?.httpStatusCode,
        );
      expect(await statusOf(reader)).toBe(403);
      expect(await statusOf(owner)).toBe(404);

      await expect(verifyUploadedFiles(reader, bucket, [file("there.jsonl")])).resolves.toBeUndefined();
      for (const client of [reader, owner]) {
        const refused = await verifyUploadedFiles(client, bucket, [file("there.jsonl"), file("missing.jsonl")]).catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(ApiError);
        expect(refused).toMatchObject({ status: 409, code: "upload_incomplete", message: expect.stringContaining("missing.jsonl: not uploaded") });
      }
    } finally {
      await owner.send(new DeleteBucketPolicyCommand({ Bucket: bucket }));
    }
  });
});
