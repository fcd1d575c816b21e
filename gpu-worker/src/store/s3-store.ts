/**
 * A BlobStore over an S3 bucket prefix (AWS, Cloudflare R2, MinIO, Ceph radosgw). Keys are
 * relative to the prefix. Large and streamed bodies go up as multipart uploads
 * (@aws-sdk/lib-storage), so a shard of any size uploads in bounded memory; S3 makes the
 * object visible only when the upload completes, which gives atomic puts.
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { Readable } from "node:stream";
import { AlreadyExistsError, NotFoundError, validateKey, validatePrefix, type BlobHead, type BlobStore, type PutOptions } from "./blob-store.ts";

export interface S3Config {
  /** e.g. http://127.0.0.1:7480; undefined for AWS itself. */
  endpoint?: string;
  region: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** bucket in the path (http://host/bucket/key): what radosgw and MinIO need by default. */
  forcePathStyle: boolean;
}

/** Reads S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_FORCE_PATH_STYLE. */
export function s3ConfigFromEnv(env: NodeJS.ProcessEnv = process.env): S3Config {
  const endpoint = env.S3_ENDPOINT || undefined;
  const pathStyle = env.S3_FORCE_PATH_STYLE;
  if (pathStyle !== undefined && pathStyle !== "" && !/^(true|false|1|0)$/i.test(pathStyle)) {
    throw new Error(`S3_FORCE_PATH_STYLE must be true or false, got ${JSON.stringify(pathStyle)}`);
  }
  const accessKeyId = env.S3_ACCESS_KEY_ID || undefined;
  const secretAccessKey = env.S3_SECRET_ACCESS_KEY || undefined;
  if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
    throw new Error("set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither (to use the default AWS credential chain)");
  }
  return {
    endpoint,
    region: env.S3_REGION || env.AWS_REGION || "us-east-1",
    accessKeyId,
    secretAccessKey,
    // A custom endpoint almost always means a non-AWS S3 that wants path style.
    forcePathStyle: pathStyle ? /^(true|1)$/i.test(pathStyle) : endpoint !== undefined,
  };
}

export function createS3Client(config: S3Config): S3Client {
  return new S3Client({
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.accessKeyId && config.secretAccessKey
      ? { credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey } }
      : {}),
    // Newer SDKs add CRC32 checksum headers/trailers to every request by default, which
    // S3-compatible stores (radosgw, older MinIO, R2 for some calls) reject or mishandle.
    // Only send them where the API requires one.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

export interface S3StoreOptions {
  client: S3Client;
  bucket: string;
  /** Key prefix inside the bucket ("" or ending in "/" after normalisation). */
  prefix?: string;
  /** Multipart part size; S3's minimum is 5 MiB. */
  partSizeBytes?: number;
  /** Parts uploaded in parallel. */
  queueSize?: number;
}

const MIN_PART_BYTES = 5 * 1024 * 1024;
const DELETE_BATCH = 1000; // DeleteObjects' limit

export class S3Store implements BlobStore {
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(options: S3StoreOptions) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.bucket)) throw new Error(`invalid S3 bucket name ${JSON.stringify(options.bucket)}`);
    this.client = options.client;
    this.bucket = options.bucket;
    const prefix = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
    this.prefix = prefix ? `${validateKey(prefix, "store prefix")}/` : "";
    this.partSize = options.partSizeBytes ?? 16 * 1024 * 1024;
    if (this.partSize < MIN_PART_BYTES) throw new Error(`S3 part size must be at least ${MIN_PART_BYTES} bytes, got ${this.partSize}`);
    this.queueSize = options.queueSize ?? 4;
  }

  describe(): string {
    return `s3://${this.bucket}/${this.prefix}`;
  }

  private fullKey(key: string): string {
    return this.prefix + validateKey(key);
  }

  private async getObject(key: string) {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
      if (!res.Body) throw new Error(`S3 GetObject ${this.describe()}${key} returned no body`);
      return res.Body;
    } catch (e) {
      throw this.translate(e, key);
    }
  }

  async get(key: string): Promise<Uint8Array> {
    return (await this.getObject(key)).transformToByteArray();
  }

  async getStream(key: string): Promise<Readable> {
    const body = await this.getObject(key);
    // In Node the SDK's body is an http.IncomingMessage, a Readable.
    if (body instanceof Readable) return body;
    return Readable.fromWeb(body.transformToWebStream() as Parameters<typeof Readable.fromWeb>[0]);
  }

  async put(key: string, body: Uint8Array | Readable, options: PutOptions = {}): Promise<void> {
    const Key = this.fullKey(key);
    const ContentType = options.contentType ?? "application/octet-stream";
    try {
      if (body instanceof Uint8Array) {
        if (options.bytes !== undefined && options.bytes !== body.length) {
          throw new Error(`put ${key}: body is ${body.length} bytes, expected ${options.bytes}`);
        }
        if (body.length <= this.partSize) {
          const IfNoneMatch = options.ifAbsent ? "*" : undefined;
          await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body: body, ContentType, ContentLength: body.length, IfNoneMatch }));
          return;
        }
      }
      if (options.ifAbsent) throw new Error(`put ${key}: ifAbsent needs a Uint8Array body of at most ${this.partSize} bytes (one PutObject)`);
      let seen = 0;
      const counted = body instanceof Uint8Array ? body : Readable.from(countBytes(body, (n) => (seen += n)), { objectMode: false });
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key, Body: counted, ContentType },
        partSize: this.partSize,
        queueSize: this.queueSize,
        leavePartsOnError: false, // abort the multipart upload on failure: no orphaned parts
      });
      await upload.done();
      if (!(body instanceof Uint8Array) && options.bytes !== undefined && seen !== options.bytes) {
        // Too late to stop the object appearing; remove it so nothing reads a wrong-sized body.
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
        throw new Error(`put ${key}: stream gave ${seen} bytes, expected ${options.bytes}`);
      }
    } catch (e) {
      throw this.translate(e, key);
    }
  }

  async head(key: string): Promise<BlobHead | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
      return { bytes: res.ContentLength ?? 0, ...(res.ETag ? { etag: res.ETag } : {}) };
    } catch (e) {
      const err = this.translate(e, key);
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    const keys: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const res = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken }),
      );
      for (const o of res.Contents ?? []) if (o.Key) keys.push(o.Key.slice(this.prefix.length));
      ContinuationToken = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return keys.sort();
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
    } catch (e) {
      const err = this.translate(e, key);
      if (!(err instanceof NotFoundError)) throw err;
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    const keys = await this.list(prefix);
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      const res = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((k) => ({ Key: this.prefix + k })), Quiet: true },
        }),
      );
      const failed = res.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0];
        throw new Error(`deleting ${failed.length} objects under ${this.describe()}${prefix} failed; first: ${first.Key}: ${first.Code} ${first.Message}`);
      }
    }
    return keys.length;
  }

  /** Missing objects become NotFoundError; other S3 errors get the store and key in the message. */
  private translate(e: unknown, key: string): Error {
    if (e instanceof NotFoundError) return e;
    if (e instanceof S3ServiceException) {
      if (e.name === "NoSuchBucket") return new Error(`S3 bucket ${this.bucket} does not exist (${this.describe()})`, { cause: e });
      if (e.name === "NoSuchKey" || e.name === "NotFound" || e.$metadata?.httpStatusCode === 404) return new NotFoundError(key, this.describe());
      // Only puts send a precondition (ifAbsent), so a 412 means the key was taken.
      if (e.name === "PreconditionFailed" || e.$metadata?.httpStatusCode === 412) return new AlreadyExistsError(key, this.describe());
      return new Error(`S3 error on ${this.describe()}${key}: ${e.name}: ${e.message}`, { cause: e });
    }
    return e instanceof Error ? e : new Error(String(e));
  }
}

/** Passes a stream's chunks through, reporting their sizes; source errors propagate. */
async function* countBytes(source: Readable, onChunk: (bytes: number) => void): AsyncGenerator<Uint8Array> {
  for await (const chunk of source as AsyncIterable<Uint8Array | string>) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    onChunk(bytes.length);
    yield bytes;
  }
}
