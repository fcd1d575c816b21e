/**
 * Before a build is dispatched, the edge checks with HEAD requests that every input object of the
 * upload exists and is what the client declared: the exact size, and the checksums where given.
 * A mismatch fails here, with the file named, instead of minutes later on a GPU worker.
 */
import { HeadObjectCommand, NotFound, type S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { ApiError } from "../errors.ts";
import { hexToBase64 } from "../uploads/presign.ts";
import type { StoredUploadFile } from "../uploads/schemas.ts";

/**
 * A HEAD that says "no such object": 404, or 403 — AWS (and radosgw) answer 403 for a missing key to a
 * caller without s3:ListBucket, which the edge's policy deliberately lacks (infra/s3-policies/README.md).
 * A GetObject permission that is really missing then also reads as "not uploaded", a 409 the client can
 * act on by uploading, rather than a 500.
 */
function isAbsentObject(error: unknown): boolean {
  if (error instanceof NotFound) return true;
  const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
  return status === 404 || status === 403;
}

/**
 * Any other failure — S3 unreachable, a timeout, a 5xx — says nothing about the upload: the client
 * should retry, so it is a 503 with Retry-After rather than a 500. (Nothing is reserved yet: the check
 * runs before the build row is inserted.) A 4xx other than 403/404 is a configuration fault: it stays a 500.
 */
function storageUnavailable(error: unknown): unknown {
  const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
  if (status !== undefined && status < 500) return error;
  return new ApiError(503, "storage_unavailable", "object storage did not answer while checking the upload; retry shortly", { "retry-after": "5" });
}

export async function verifyUploadedFiles(client: S3Client, bucket: string, files: readonly StoredUploadFile[]): Promise<void> {
  const problems = (
    await Promise.all(
      files.map(async (file): Promise<string | undefined> => {
        let head;
        try {
          head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: file.key, ...(file.sha256 ? { ChecksumMode: "ENABLED" as const } : {}) }));
        } catch (error) {
          if (isAbsentObject(error)) return `${file.name}: not uploaded`;
          throw storageUnavailable(error);
        }
        if (head.ContentLength !== file.bytes) return `${file.name}: ${head.ContentLength} bytes stored, ${file.bytes} declared`;
        // A single-part PUT's ETag is the hex MD5 of the body (the presigned PUT is single-part).
        if (file.md5 && head.ETag?.replace(/"/g, "") !== file.md5) return `${file.name}: MD5 does not match the declared md5`;
        // Stores that keep flexible checksums report it; ones that do not (radosgw 16) leave it unset.
        if (file.sha256 && head.ChecksumSHA256 && head.ChecksumSHA256 !== hexToBase64(file.sha256)) return `${file.name}: SHA-256 does not match the declared sha256`;
        return undefined;
      }),
    )
  ).filter((p): p is string => p !== undefined);
  if (problems.length > 0) throw new ApiError(409, "upload_incomplete", `the upload does not match its declaration: ${problems.slice(0, 5).join("; ")}`);
}
