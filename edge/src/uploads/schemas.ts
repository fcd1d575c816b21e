/** The upload request: which files the client will PUT, with their exact sizes and optional checksums. */
import { z } from "zod";

/** S3's limit for one PUT; larger inputs must be split into several files. */
export const MAX_FILE_BYTES = 5 * 2 ** 30;
export const MAX_FILES = 100;
export const MAX_UPLOAD_BYTES = 100 * 2 ** 30;

/**
 * File names become the last segment of an S3 key, so they are held to a safe alphabet and
 * refused (not rewritten) otherwise: rewriting could map two names onto one key, and the client
 * would not know which key its name became. NFC first, so a composed/decomposed name is one name.
 */
export const FILE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const uploadFileSchema = z.strictObject({
  name: z
    .string()
    .transform((s) => s.normalize("NFC"))
    .pipe(z.string().regex(FILE_NAME_PATTERN, "name must be 1-128 of [A-Za-z0-9._-], starting with a letter or digit")),
  bytes: z.number().int().min(1).max(MAX_FILE_BYTES),
  /** Hex SHA-256 of the file: signed into the URL as x-amz-checksum-sha256 (verified by S3s with flexible checksums, e.g. AWS, R2). */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "sha256 must be 64 lowercase hex digits").optional(),
  /** Hex MD5 of the file: signed as Content-MD5, which every S3 (Ceph radosgw included) verifies. */
  md5: z.string().regex(/^[0-9a-f]{32}$/, "md5 must be 32 lowercase hex digits").optional(),
});
export type UploadFile = z.infer<typeof uploadFileSchema>;

export const uploadBodySchema = z.strictObject({
  files: z
    .array(uploadFileSchema)
    .min(1)
    .max(MAX_FILES)
    .refine((files) => new Set(files.map((f) => f.name)).size === files.length, "file names must be unique")
    .refine((files) => files.reduce((n, f) => n + f.bytes, 0) <= MAX_UPLOAD_BYTES, `an upload holds at most ${MAX_UPLOAD_BYTES} bytes`),
});

/** What the upload row records per file, for the build's checks. */
export interface StoredUploadFile extends UploadFile {
  key: string;
}
