/**
 * A real S3 for tests: the radosgw cluster of infra/s3 (see its README). If S3_ENDPOINT is
 * already set (CI, or `eval "$(infra/s3/ceph-start.sh)"` in the shell) that S3 is used;
 * otherwise the scripts install Ceph if needed and start (or reuse, in ~0.3 s) the cluster.
 */
import type { S3Settings } from "../../infra/dev/stack.ts";
import { parseExports } from "./shell-exports.ts";

export { parseExports };
import { CreateBucketCommand, HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createS3Client, s3ConfigFromEnv, type S3Config } from "../../gpu-worker/src/store/s3-store.ts";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const S3_VARS = ["S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_FORCE_PATH_STYLE"] as const;

export interface S3TestEnv {
  /** The S3_* variables, ready for s3ConfigFromEnv or a child process's env. */
  env: Record<string, string>;
  config: S3Config;
}

let pending: Promise<S3TestEnv> | undefined;

/** The S3 settings to test against, starting the local radosgw if none is configured. */
export function s3TestEnv(): Promise<S3TestEnv> {
  pending ??= resolveEnv().catch((e) => {
    pending = undefined; // let a later call retry
    throw e;
  });
  return pending;
}

async function resolveEnv(): Promise<S3TestEnv> {
  let env: Record<string, string>;
  if (process.env.S3_ENDPOINT) {
    env = Object.fromEntries(S3_VARS.flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])));
  } else {
    const script = (name: string) => join(REPO, "infra", "s3", name);
    await runScript(script("ceph-install.sh"), []);
    // Test files run in parallel processes: serialise starts so only one builds the cluster.
    // -o: the daemons the script leaves running must not inherit (and keep) the lock.
    const lock = `${process.env.CEPH_DIR ?? "/tmp/hypencoder-ceph"}.lock`;
    const { stdout } = existsSync("/usr/bin/flock") || existsSync("/bin/flock")
      ? await runScript("flock", ["-o", lock, script("ceph-start.sh")])
      : await runScript(script("ceph-start.sh"), []);
    env = parseExports(stdout);
    if (!env.S3_ENDPOINT) throw new Error(`infra/s3/ceph-start.sh printed no S3_ENDPOINT:\n${stdout}`);
  }
  return { env, config: s3ConfigFromEnv(env) };
}

/**
 * Runs a script with stdout/stderr going to files, and waits for it to exit. Not pipes:
 * ceph-start.sh leaves daemons running that inherit its stdout, so a pipe would never
 * close and execFile would wait until its timeout.
 */
async function runScript(cmd: string, args: string[], timeoutMs = 240_000): Promise<{ stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), "s3-support-"));
  const outPath = join(dir, "stdout");
  const errPath = join(dir, "stderr");
  const out = openSync(outPath, "w");
  const err = openSync(errPath, "w");
  try {
    const child = spawn(cmd, args, { stdio: ["ignore", out, err] });
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
      child.on("error", reject);
      child.on("exit", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    const stdout = readFileSync(outPath, "utf8");
    const stderr = readFileSync(errPath, "utf8");
    if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited with ${code}:\n${stderr.slice(-4000)}`);
    return { stdout, stderr };
  } finally {
    closeSync(out);
    closeSync(err);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A client for the test S3. */
export async function s3TestClient(): Promise<S3Client> {
  return createS3Client((await s3TestEnv()).config);
}

/** Whether `key` exists in `bucket` of the test S3 (read directly, never through a test proxy). */
export async function objectExists(bucket: string, key: string): Promise<boolean> {
  const client = await s3TestClient();
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw error;
  } finally {
    client.destroy();
  }
}

/** Creates a new, empty bucket named `<prefix>-<random>` and returns its name. */
export async function freshBucket(prefix: string): Promise<string> {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 40).replace(/^-+|-+$/g, "") || "test";
  const name = `${clean}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
  const client = await s3TestClient();
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
  return name;
}

/** The test S3 with a fresh bucket, in the shape the dev stack launcher (infra/dev/stack.ts) takes. */
export async function testS3Settings(bucketPrefix: string): Promise<S3Settings> {
  const { config } = await s3TestEnv();
  return {
    endpoint: config.endpoint!,
    region: config.region,
    accessKeyId: config.accessKeyId!,
    secretAccessKey: config.secretAccessKey!,
    bucket: await freshBucket(bucketPrefix),
  };
}
