/**
 * Reading a new version's manifest.json from S3 (written last by the worker, so its existence means
 * the version is complete): the shard list that search routes on, the live document count and the
 * WAL seq it covers. Shared by the builds route (a bulk build) and living/maintenance.ts (a compaction).
 */
import { GetObjectCommand, type S3ServiceException } from "@aws-sdk/client-s3";
import { manifestKey } from "../../../shared/index/keys.ts";
import { coveredSeqOf, indexManifestSchema } from "../../../shared/index/manifest.ts";
import type { BuiltVersion } from "../db/builds.ts";
import type { s3For } from "../uploads/routes.ts";

/** The edge's S3 client and bucket (uploads/s3-client.ts). */
export type S3Handle = ReturnType<typeof s3For>;

/** Pauses before the 2nd and 3rd manifest read after a transient S3 error. */
export const MANIFEST_READ_BACKOFF_MS: readonly number[] = [250, 1_000];

export type { BuiltVersion };

export type BuiltVersionRead =
  | { kind: "ok"; version: BuiltVersion }
  /** A definite answer: the manifest is missing (the worker writes it before reporting success) or wrong. */
  | { kind: "invalid"; message: string }
  /** S3 did not answer definitely (network error, 5xx, throttling) after every retry. */
  | { kind: "unavailable" };

/** A missing object is a definite answer; anything else S3 (or the network) says may pass. */
function isMissingObject(error: unknown): boolean {
  // By status, not class: in workerd the SDK's NoSuchKey arrives as another error type with the same $metadata.
  return (error as Partial<S3ServiceException> | undefined)?.$metadata?.httpStatusCode === 404;
}

/**
 * The manifest of `version`, checked to name exactly that tenant, index and version. Transient S3
 * errors are retried with backoff; only a definite answer is "invalid". `what` names the job in
 * messages ("build", "compaction").
 */
export async function readVersionManifest(
  s3: S3Handle,
  target: { tenantId: string; indexId: string; version: number },
  backoffMs: readonly number[],
  what = "build",
): Promise<BuiltVersionRead> {
  const key = manifestKey(target.tenantId, target.indexId, target.version);
  let text: string | undefined;
  for (let attempt = 0; text === undefined; attempt++) {
    try {
      const object = await s3.client.send(new GetObjectCommand({ Bucket: s3.settings.bucket, Key: key }));
      text = await object.Body!.transformToString();
    } catch (error) {
      if (isMissingObject(error)) return { kind: "invalid", message: `the ${what} reported success but its manifest does not exist` };
      if (attempt >= backoffMs.length) {
        console.error(`reading a ${what}'s manifest failed; the next poll retries`, (error as Error)?.name);
        return { kind: "unavailable" };
      }
      await new Promise((resolve) => setTimeout(resolve, backoffMs[attempt]));
    }
  }
  let parsed;
  try {
    parsed = indexManifestSchema.safeParse(JSON.parse(text));
  } catch {
    return { kind: "invalid", message: `the ${what}'s manifest is not JSON` };
  }
  if (!parsed.success) return { kind: "invalid", message: `the ${what}'s manifest is invalid` };
  const m = parsed.data;
  if (m.tenant !== target.tenantId || m.index !== target.indexId || m.indexVersion !== target.version) {
    return { kind: "invalid", message: `the ${what}'s manifest names another index version` };
  }
  const deleted = m.shards.reduce((n, s) => n + (s.deletes?.count ?? 0), 0);
  return {
    kind: "ok",
    version: {
      docCount: m.docCount - deleted,
      manifestKey: key,
      shards: m.shards.map((s) => ({ id: s.id, bytes: s.bytes, docCount: s.docCount })),
      coveredSeq: coveredSeqOf(m),
    },
  };
}
