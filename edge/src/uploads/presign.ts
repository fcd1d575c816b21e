/**
 * Presigned S3 PUTs (SigV4 query auth via @aws-sdk/s3-request-presigner, which runs in workerd).
 * The URL is bound to one key, a short lifetime, the exact body size and, when the client declared
 * them, the body's checksums: every such value is a SIGNED header, so a client that sends another
 * size or other bytes fails the signature (or S3's own checksum check) and the object is not written.
 */
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

export interface PresignPutInput {
  bucket: string;
  key: string;
  /** Exact body size: signed as Content-Length. */
  bytes: number;
  /** Hex sha256 of the body: signed as x-amz-checksum-sha256 (S3 verifies it where it implements flexible checksums). */
  sha256?: string;
  /** Hex md5 of the body: signed as Content-MD5, which every S3 (radosgw included) verifies. */
  md5?: string;
  expiresInSeconds: number;
  /** Defaults to the clock; tests pass an old date to get an expired URL. */
  signingDate?: Date;
}

export interface PresignedPut {
  method: "PUT";
  url: string;
  /** Headers the client must send exactly as given (fetch/curl set Content-Length from the body). */
  headers: Record<string, string>;
  key: string;
  expiresAt: string;
}

export function hexToBase64(hex: string): string {
  let binary = "";
  for (let i = 0; i < hex.length; i += 2) binary += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
  return btoa(binary);
}

export async function presignPut(client: S3Client, input: PresignPutInput): Promise<PresignedPut> {
  const headers: Record<string, string> = { "content-length": String(input.bytes) };
  if (input.sha256) headers["x-amz-checksum-sha256"] = hexToBase64(input.sha256);
  if (input.md5) headers["content-md5"] = hexToBase64(input.md5);
  const command = new PutObjectCommand({
    Bucket: input.bucket,
    Key: input.key,
    ContentLength: input.bytes,
    ...(input.sha256 ? { ChecksumSHA256: headers["x-amz-checksum-sha256"] } : {}),
    ...(input.md5 ? { ContentMD5: headers["content-md5"] } : {}),
  });
  const signingDate = input.signingDate ?? new Date();
  const url = await getSignedUrl(client, command, {
    expiresIn: input.expiresInSeconds,
    signingDate,
    // Signed AND left as headers (not hoisted into the query string), so S3 checks them against
    // the request it actually receives.
    signableHeaders: new Set(Object.keys(headers)),
    unhoistableHeaders: new Set(Object.keys(headers).filter((h) => h.startsWith("x-amz-"))),
  });
  // Content-Length is set by the HTTP client from the body; listing it tells the client the size is binding.
  return {
    method: "PUT",
    url,
    headers,
    key: input.key,
    expiresAt: new Date(signingDate.getTime() + input.expiresInSeconds * 1000).toISOString(),
  };
}
