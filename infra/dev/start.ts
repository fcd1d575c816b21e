/**
 * `npm run dev`: the whole local stack on embedded defaults —
 *   an S3 (embedded s3rver, or any real S3 named by S3_ENDPOINT), one GPU worker on the CPU, and the
 *   edge under `wrangler dev` with local D1 —
 * then a demo tenant, key and index built from the bundled Debian corpus, and a ready curl line.
 *
 * State lives in .dev/ (objects, D1, keys), so a restart keeps the indexes and keys. A process that
 * crashes is restarted with backoff (infra/dev/supervisor.ts); Ctrl-C, or one process crashing
 * DEV_MAX_CRASHES times within DEV_CRASH_WINDOW_S, stops every process it started.
 */
import { randomBytes } from "node:crypto";
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { createS3Client } from "../../gpu-worker/src/store/s3-store.ts";
import { seedDemo } from "./demo-index.ts";
import { ensureDemoModel } from "./demo-model.ts";
import { type EmbeddedS3, startEmbeddedS3 } from "./embedded-s3.ts";
import { stopAll } from "./processes.ts";
import { restartEdge, restartWorker, type S3Settings, startStack } from "./stack.ts";
import { DEFAULT_CRASH_WINDOW_MS, DEFAULT_MAX_CRASHES, Supervisor } from "./supervisor.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const DEV_DIR = resolve(process.env.HYPENCODER_DEV_DIR ?? join(ROOT, ".dev"));
const EDGE_PORT = Number(process.env.EDGE_PORT ?? 8787);
const WORKER_PORT = Number(process.env.WORKER_PORT ?? 8081);
const S3RVER_PORT = Number(process.env.S3RVER_PORT ?? 4569);
const DEMO_INDEX = "debian";
/** Shown on start; each returns sensible packages from the demo index (checked by hand, README). */
const EXAMPLE_QUERIES = ["command line text editor", "photo editing", "password manager", "music player"];
const MAX_CRASHES = Number(process.env.DEV_MAX_CRASHES ?? DEFAULT_MAX_CRASHES);
const CRASH_WINDOW_MS = process.env.DEV_CRASH_WINDOW_S ? Number(process.env.DEV_CRASH_WINDOW_S) * 1000 : DEFAULT_CRASH_WINDOW_MS;

const log = (message: string) => process.stderr.write(`[dev] ${message}\n`);

interface DevSecrets {
  signingSecret: string;
  adminToken: string;
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

/** Generated once and kept in .dev/, so restarts reuse the same keys. */
async function devSecrets(): Promise<DevSecrets> {
  const path = join(DEV_DIR, "secrets.json");
  const existing = await readJson<DevSecrets>(path);
  if (existing) return existing;
  const secrets = { signingSecret: randomBytes(32).toString("hex"), adminToken: randomBytes(24).toString("base64url") };
  await writeFile(path, JSON.stringify(secrets), { mode: 0o600 });
  return secrets;
}

async function s3(): Promise<{ settings: S3Settings; embedded?: EmbeddedS3 }> {
  const bucket = process.env.S3_BUCKET ?? "hypencoder-dev";
  if (!process.env.S3_ENDPOINT) {
    const embedded = await startEmbeddedS3({ directory: join(DEV_DIR, "s3"), port: S3RVER_PORT, bucket });
    log(`embedded S3 (s3rver) on ${embedded.settings.endpoint}, bucket ${bucket}`);
    log("note: s3rver does NOT verify S3 signatures; the tests use Ceph radosgw for that (infra/s3/)");
    return { settings: embedded.settings, embedded };
  }
  const settings = {
    endpoint: process.env.S3_ENDPOINT,
    region: process.env.S3_REGION ?? "us-east-1",
    accessKeyId: required("S3_ACCESS_KEY_ID"),
    secretAccessKey: required("S3_SECRET_ACCESS_KEY"),
    bucket,
  };
  const client = createS3Client({ ...settings, forcePathStyle: process.env.S3_FORCE_PATH_STYLE !== "false" });
  await client.send(new CreateBucketCommand({ Bucket: bucket })).catch((error: { name?: string }) => {
    if (error.name !== "BucketAlreadyOwnedByYou" && error.name !== "BucketAlreadyExists") throw error;
  });
  client.destroy();
  log(`S3 at ${settings.endpoint}, bucket ${bucket}`);
  return { settings };
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`S3_ENDPOINT is set, so ${name} must be too`);
  return value;
}

async function main(): Promise<void> {
  const started = Date.now();
  await mkdir(DEV_DIR, { recursive: true });
  const secrets = await devSecrets();
  const storage = await s3();
  const supervisor = new Supervisor({ log, maxCrashes: MAX_CRASHES, windowMs: CRASH_WINDOW_MS });
  let stopping = false;
  const shutdown = async (code: number, why: string) => {
    if (stopping) return;
    stopping = true;
    supervisor.stop();
    log(`stopping the stack: ${why}`);
    await stopAll(10_000);
    await storage.embedded?.close();
    process.exit(code);
  };
  process.on("SIGINT", () => void shutdown(0, "SIGINT (Ctrl-C)"));
  process.on("SIGTERM", () => void shutdown(0, "SIGTERM"));
  try {
    const model = await ensureDemoModel(DEV_DIR, log, process.env.HYPENCODER_DEV_CHECKPOINT ? resolve(process.env.HYPENCODER_DEV_CHECKPOINT) : undefined);
    log(
      model.trained
        ? `model: ${model.manifest.source.baseModelName} (${model.checkpoint}, model id ${model.manifest.modelId.slice(0, 12)})`
        : "model: the tiny random test checkpoint — its scores are random (README: Models)",
    );
    const stack = await startStack({
      dir: DEV_DIR,
      modelDir: model.dir,
      s3: storage.settings,
      workers: 1,
      workerPorts: [WORKER_PORT],
      edgePort: EDGE_PORT,
      signingSecret: secrets.signingSecret,
      adminToken: secrets.adminToken,
      workerEnv: { LOG_LEVEL: "info" },
    });
    stack.workers.forEach((worker, i) =>
      supervisor.watch(`worker-${i}`, worker.process, async () => (await restartWorker(stack, i)).process),
    );
    supervisor.watch("edge", stack.edge.process, async () => (await restartEdge(stack)).process);
    void supervisor.gaveUp.then((reason) => shutdown(1, reason));
    const demo = await seedDemo({ edgeUrl: stack.edge.url, adminToken: secrets.adminToken, devDir: DEV_DIR, modelId: model.manifest.modelId, log });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    log(`ready in ${seconds}s, the demo index holding ${demo.docs.toLocaleString("en-US")} packages`);
    const apiKey = demo.state.apiKey;
    const query = (q: string) => encodeURIComponent(q).replace(/%20/g, "+");
    process.stdout.write(
      [
        "",
        `Search page:  ${stack.edge.url}/   (API key: ${apiKey}, index: ${DEMO_INDEX})`,
        "Try:",
        `  curl -s -H 'Authorization: Bearer ${apiKey}' '${stack.edge.url}/v1/indexes/${DEMO_INDEX}/search?q=${query(EXAMPLE_QUERIES[0]!)}&k=5&fields=title'`,
        `  or, on the page: ${EXAMPLE_QUERIES.map((q) => JSON.stringify(q)).join(", ")}`,
        "Write a document (searchable as soon as it is acknowledged), then read it back:",
        `  curl -s -X POST -H 'Authorization: Bearer ${apiKey}' -H 'content-type: application/json' -H 'idempotency-key: demo-1' '${stack.edge.url}/v1/indexes/${DEMO_INDEX}/documents' -d '{"upsert": [{"id": "my-note", "text": "a tool to search documents with a neural query encoder", "title": "my-note"}]}'`,
        `  curl -s -H 'Authorization: Bearer ${apiKey}' '${stack.edge.url}/v1/indexes/${DEMO_INDEX}/documents/my-note'`,
        `OpenAPI:      ${stack.edge.url}/v1/openapi.json`,
        `Admin token:  in ${join(DEV_DIR, "secrets.json")}`,
        "Ctrl-C stops everything.",
        "",
      ].join("\n"),
    );
    // The rest of the corpus builds in the background; the supervisor keeps the stack up meanwhile.
    void demo.fullCorpus?.();
  } catch (error) {
    await shutdown(1, `failed: ${(error as Error).message}`);
  }
}

await main();
