/**
 * `hypencoder index build`: builds an index version from local JSONL files into a folder or an
 * S3 prefix. `--out` is a version prefix root: it receives `manifest.json` and `shards/…` exactly
 * as the service writes tenants/<t>/indexes/<i>/versions/<vNNNNNN>/, so a folder built here can be
 * uploaded there as it is (with --tenant/--index/--version matching the destination, since the
 * manifest records them). Same pipeline as the service: runBuild.
 */
import { stat } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { ZodError } from "zod";
import { buildRequestSchema, type BuildRequest } from "../../../../shared/api/worker-api.ts";
import { MANIFEST_FILE } from "../../../../shared/index/keys.ts";
import { BuildConflictError } from "../../index/build/errors.ts";
import { runBuild, type BuildUpdate } from "../../index/build/run-build.ts";
import { describeZodError } from "../../io/zod-issues.ts";
import { HypencoderRuntime } from "../../model/runtime/runtime.ts";
import { LocalStore } from "../../store/local-store.ts";
import { openStore } from "../../store/open-store.ts";
import { nonNegativeInt, optional, parse, positiveInt, required, UsageError } from "../args.ts";
import { writeLine } from "../output.ts";
import { note, progressReporter } from "../progress.ts";

const USAGE =
  "hypencoder index build --model <model-dir> --docs <docs.jsonl[.gz]> --out <dir | s3://bucket/prefix> [--degree N] [--doc-max-length N] " +
  "[--dtype float16|float32] [--shard-bytes N] [--fields text,title] [--entry-rows N] [--reverse-share X] [--tenant T] [--index I] [--version N]";

const OPTIONS = {
  model: { type: "string" },
  docs: { type: "string", multiple: true },
  out: { type: "string" },
  degree: { type: "string" },
  "doc-max-length": { type: "string" },
  dtype: { type: "string" },
  "shard-bytes": { type: "string" },
  fields: { type: "string" },
  "entry-rows": { type: "string" },
  "reverse-share": { type: "string" },
  tenant: { type: "string" },
  index: { type: "string" },
  version: { type: "string" },
} as const;

/** `hypencoder index <subcommand>`; other index subcommands register here. */
export const INDEX_SUBCOMMANDS: Record<string, (argv: string[]) => Promise<void>> = {
  build: indexBuildCommand,
};

export async function indexCommand(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  const command = name ? INDEX_SUBCOMMANDS[name] : undefined;
  if (!command) {
    throw new UsageError(`${name ? `unknown index subcommand "${name}"` : "missing index subcommand"}; expected one of: ${Object.keys(INDEX_SUBCOMMANDS).join(", ")}`);
  }
  await command(rest);
}

export async function indexBuildCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, OPTIONS, USAGE);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}\nusage: ${USAGE}`);
  const modelDir = required(values, "model", USAGE);
  const out = required(values, "out", USAGE);
  const docs = values.docs ?? [];
  if (docs.length === 0) throw new UsageError(`missing --docs\nusage: ${USAGE}`);

  // Each input file is a key in a LocalStore rooted at its folder: the same reader as the service's.
  const inputs = await Promise.all(docs.map(async (path) => {
    const full = resolve(path);
    const info = await stat(full).catch(() => undefined);
    if (!info?.isFile()) throw new Error(`--docs ${path}: no such file`);
    return { store: new LocalStore(dirname(full)), key: basename(full), path };
  }));
  if (new Set(inputs.map((i) => i.store.root)).size > 1) {
    throw new UsageError("--docs files must be in one folder (they are read as keys of that folder)");
  }

  const request = parseRequest({
    tenant: values.tenant ?? "local",
    index: values.index ?? "default",
    version: positiveInt(values, "version") ?? 1,
    inputs: inputs.map((i) => ({ format: "jsonl", key: i.key })),
    ...optional("degree", positiveInt(values, "degree")),
    ...optional("docMaxLength", positiveInt(values, "doc-max-length")),
    ...optional("dtype", values.dtype),
    ...optional("shardBytes", positiveInt(values, "shard-bytes")),
    ...optional("storeFields", values.fields?.split(",").map((f) => f.trim()).filter((f) => f !== "")),
    ...optional("entryRows", nonNegativeInt(values, "entry-rows")),
    // A number the schema range-checks; "" or text becomes NaN, which it refuses by flag name.
    ...optional("reverseShare", values["reverse-share"] === undefined ? undefined : Number(values["reverse-share"])),
  });

  const store = openStore(out);
  const alreadyBuilt = () => new Error(`${out} already holds an index (${MANIFEST_FILE}); build into an empty --out`);
  // runBuild refuses too; checking first saves loading the model just to say no.
  if (await store.head(MANIFEST_FILE)) throw alreadyBuilt();
  const started = performance.now();
  const runtime = await HypencoderRuntime.load(modelDir);
  const controller = new AbortController();
  // Ctrl-C stops at the next batch and removes the shards written so far; a second one kills.
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130);
    note(`${signal}: stopping the build (again to exit at once)`);
    controller.abort(new DOMException(`interrupted by ${signal}`, "AbortError"));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const manifest = await runBuild(request, {
      runtime,
      store,
      inputStore: inputs[0].store,
      prefix: "",
      signal: controller.signal,
      onProgress: cliProgress(),
      onWarning: (message) => note(`warning: ${message}`),
    });
    await writeLine({
      docs: manifest.docCount,
      shards: manifest.shards.length,
      bytes: manifest.shards.reduce((n, s) => n + s.bytes, 0),
      reachableFraction: manifest.graph.reachableFraction,
      ms: Math.round(performance.now() - started),
    });
  } catch (error) {
    if (error instanceof BuildConflictError) throw alreadyBuilt();
    if (controller.signal.aborted) throw new Error(`${(controller.signal.reason as Error).message}; nothing was published`);
    throw error;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await runtime.close();
  }
}


function parseRequest(value: unknown): BuildRequest {
  try {
    return buildRequestSchema.parse(value);
  } catch (error) {
    if (error instanceof ZodError) {
      // Name the CLI flag, not the request field.
      const flags: Record<string, string> = { docMaxLength: "--doc-max-length", shardBytes: "--shard-bytes", storeFields: "--fields", entryRows: "--entry-rows", reverseShare: "--reverse-share" };
      const message = describeZodError(error).replace(/^(\w+)/, (field) => flags[field] ?? `--${field}`);
      throw new UsageError(`${message}\nusage: ${USAGE}`);
    }
    throw error;
  }
}

/** Counts on stderr, at most once a second per phase. */
function cliProgress(): (update: BuildUpdate) => void {
  let docsTotal = 0;
  let lastRead = 0;
  let lastEncoded = 0;
  const encoding = progressReporter("encoding documents");
  const graph = progressReporter("building graphs (%)");
  return (update) => {
    const p = update.progress;
    if (!p) return;
    if (p.docsTotal !== undefined) {
      docsTotal = p.docsTotal;
      note(`read ${docsTotal} documents`);
    } else if (p.docsRead !== undefined && Date.now() - lastRead >= 1000) {
      lastRead = Date.now();
      note(`reading documents: ${p.docsRead}`);
    }
    if (p.docsEncoded !== undefined && p.docsEncoded !== lastEncoded) {
      lastEncoded = p.docsEncoded;
      encoding(p.docsEncoded, docsTotal);
    }
    if (p.graphPercent !== undefined) graph(Math.floor(p.graphPercent), 100);
    if (p.bytesWritten !== undefined) note(`written: ${p.bytesWritten} bytes`);
  };
}
