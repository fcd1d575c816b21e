/**
 * `hypencoder` — the command-line face of the model runtime (and, later, of index build and search).
 * Errors print one line (plus usage for usage errors) and exit non-zero.
 */
import { BuildInputError } from "../index/build/errors.ts";
import { InputError } from "../io/jsonl.ts";
import { UsageError } from "./args.ts";
import { embedCommand } from "./commands/embed.ts";
import { importCommand } from "./commands/import.ts";
import { indexCommand } from "./commands/index-build.ts";
import { scoreCommand } from "./commands/score.ts";
import { searchCommand } from "./commands/search.ts";

const COMMANDS: Record<string, (argv: string[]) => Promise<void>> = {
  import: importCommand,
  embed: embedCommand,
  score: scoreCommand,
  index: indexCommand,
  search: searchCommand,
};

const HELP = `usage: hypencoder <command> [options]

commands:
  import <checkpoint-dir> --out <model-dir> [--base-config <file>] [--force]
      convert a HuggingFace-layout Hypencoder checkpoint into a model directory
  embed --model <model-dir> --docs <docs.jsonl> [--doc-max-length N]
      print {"id","embedding"} per document
  score --model <model-dir> --queries <q.jsonl> --docs <d.jsonl> [--query-max-length N] [--doc-max-length N]
      print {"query_id","doc_id","score"} per (query, document) pair
  index build --model <model-dir> --docs <docs.jsonl[.gz]> --out <dir | s3://bucket/prefix> [--degree N] [--doc-max-length N]
      [--dtype float16|float32] [--shard-bytes N] [--fields text,title] [--entry-rows N] [--reverse-share X] [--tenant T] [--index I] [--version N]
      build an index version (manifest.json + shards/) into --out; prints a one-line JSON summary
  search --index <dir or s3://bucket/prefix> --queries <q.jsonl> --k N [--mode exact|approx] [--entry-points N]
         [--ncandidates N] [--max-iter N] [--no-early-stop] [--seed N] [--query-max-length N] [--model <model-dir>]
      search an index version (manifest.json + shards/); print {"query_id","hits","stats"} per query.
      The model is --model, else $HYPENCODER_MODEL; it must be the one the index was built with

Input lines are {"id","text"}. Progress goes to stderr, results to stdout.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${HELP}\n`);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`hypencoder: unknown command "${name}" (try "hypencoder --help")\n`);
    return 2;
  }
  try {
    await command(rest);
    return 0;
  } catch (error) {
    // The CLI's user owns the input, so a bad line's quoted detail is shown.
    const message = error instanceof BuildInputError ? error.tenantMessage : error instanceof Error ? error.message : String(error);
    process.stderr.write(`hypencoder ${name}: ${message}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}

// An EPIPE on stdout (e.g. `| head`) is a normal end, not a crash.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
