import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GRAPH_SEARCH_VARIANTS, type GraphSearchVariant, LIMITS, SEARCH_DEFAULTS, type SearchParams } from "../../../../shared/api/worker-api.ts";
import { IndexRegistry } from "../../index/index-registry.ts";
import { ShardCache } from "../../index/shard-cache.ts";
import { searchIndex } from "../../index/shard-search.ts";
import { readIdTextFile } from "../../io/jsonl.ts";
import { readModelManifest } from "../../model/model-manifest.ts";
import { HypencoderRuntime } from "../../model/runtime/runtime.ts";
import { openStore } from "../../store/open-store.ts";
import { nonNegativeInt, optional, parse, positiveInt, required, UsageError } from "../args.ts";
import { note, progressReporter } from "../progress.ts";
import { writeLine } from "../output.ts";

/** Queries encoded per query-encoder call (the runtime's default batch). */
const QUERY_BATCH = 32;

const USAGE =
  "hypencoder search --index <dir or s3://bucket/prefix> --queries <q.jsonl> --k N [--mode exact|approx] [--variant proxy|best-first|published] " +
  "[--entry-points N] [--ncandidates N] [--proxy-seeds N] [--max-iter N] [--no-early-stop] [--seed N] [--query-max-length N] [--model <model-dir>]";

/** The environment variable naming the model directory when --model is not given. */
export const MODEL_ENV = "HYPENCODER_MODEL";

/**
 * Searches one index version (a folder or S3 prefix laid out like a version prefix: manifest.json
 * and shards/…, as `hypencoder index build --out` writes it) and prints, per query in file order,
 * {"query_id","hits":[{"id","score"}],"stats":{…}}.
 */
export async function searchCommand(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      index: { type: "string" },
      queries: { type: "string" },
      model: { type: "string" },
      k: { type: "string" },
      mode: { type: "string" },
      variant: { type: "string" },
      "entry-points": { type: "string" },
      ncandidates: { type: "string" },
      "proxy-seeds": { type: "string" },
      "max-iter": { type: "string" },
      "no-early-stop": { type: "boolean" },
      seed: { type: "string" },
      "query-max-length": { type: "string" },
    },
    USAGE,
  );
  const location = required(values, "index", USAGE);
  const queriesPath = required(values, "queries", USAGE);
  const modelDir = values.model || process.env[MODEL_ENV];
  if (!modelDir) {
    throw new UsageError(`no model: pass --model <model-dir> or set ${MODEL_ENV} (it must be the model the index was built with)\nusage: ${USAGE}`);
  }
  const params = searchParams(values);
  const queryMaxLength = positiveInt(values, "query-max-length");
  const queries = await readIdTextFile(queriesPath);

  const store = openStore(location);
  // A private, throwaway cache: the CLI verifies and opens the index once and exits.
  const cacheDir = await mkdtemp(join(tmpdir(), "hypencoder-search-"));
  let runtime: HypencoderRuntime | undefined;
  let registry: IndexRegistry | undefined;
  try {
    // The index manifest is read and checked against the model's id before the (slower) runtime
    // starts, so a wrong --index or model fails at once.
    registry = new IndexRegistry({
      store,
      cache: new ShardCache({ dir: cacheDir, budgetBytes: Number.MAX_SAFE_INTEGER, store }),
      modelId: (await readModelManifest(modelDir)).modelId,
    });
    const index = await registry.at("");
    note(`index ${index.label}: ${index.manifest.docCount} documents in ${index.manifest.shards.length} shards`);
    const loadStart = performance.now();
    const [loadedRuntime] = await Promise.all([
      HypencoderRuntime.load(modelDir),
      // Failures are reported per query (missingShards) by searchIndex below.
      ...index.manifest.shards.map((s) => index.shard(s.id).catch(() => undefined)),
    ]);
    runtime = loadedRuntime;
    note(`model and shards loaded in ${((performance.now() - loadStart) / 1000).toFixed(1)}s`);

    // Queries are encoded a batch at a time and their q-nets stay in the inference thread, released
    // as soon as each is searched: never every query's weights at once.
    const report = progressReporter("searching");
    const warned = new Set<string>();
    for (let start = 0; start < queries.length; start += QUERY_BATCH) {
      const batch = queries.slice(start, start + QUERY_BATCH);
      const encodeStart = performance.now();
      const prepared = await runtime.prepareQueries(
        batch.map((q) => q.text),
        queryMaxLength ? { maxLength: queryMaxLength } : {},
      );
      const encodeMsPerQuery = (performance.now() - encodeStart) / batch.length;
      try {
        for (const [i, query] of batch.entries()) {
          const started = performance.now();
          const result = await searchIndex(index, {
            params,
            qnet: prepared[i]!,
            onShardError: (shard, error) => {
              if (warned.has(shard)) return;
              warned.add(shard);
              note(`warning: shard ${shard} could not be loaded, results are partial: ${(error as Error).message}`);
            },
          });
          await prepared[i]!.release();
          await writeLine({
            query_id: query.id,
            hits: result.hits.map((h) => ({ id: h.id, score: h.score })),
            stats: {
              docsScored: result.docsScored,
              iterations: result.iterations,
              shardsSearched: result.shardsSearched,
              missingShards: result.missingShards,
              ms: { encode: round(encodeMsPerQuery), search: round(performance.now() - started) },
            },
          });
          report(start + i + 1, queries.length);
        }
      } finally {
        await Promise.all(prepared.map((p) => p.release())); // idempotent: releases what an error left
      }
    }
  } finally {
    await registry?.close();
    await runtime?.close();
    await rm(cacheDir, { recursive: true, force: true });
  }
}

function searchParams(values: Record<string, unknown>): SearchParams {
  const mode = values.mode ?? SEARCH_DEFAULTS.mode;
  if (mode !== "exact" && mode !== "approx") throw new UsageError(`--mode must be exact or approx, got ${JSON.stringify(mode)}`);
  const variant = values.variant ?? SEARCH_DEFAULTS.variant;
  if (!(GRAPH_SEARCH_VARIANTS as readonly unknown[]).includes(variant)) {
    throw new UsageError(`--variant must be one of ${GRAPH_SEARCH_VARIANTS.join(", ")}, got ${JSON.stringify(variant)}`);
  }
  const seed = values.seed === undefined ? SEARCH_DEFAULTS.seed : parseSeed(values.seed);
  return {
    k: positiveInt(values, "k") ?? SEARCH_DEFAULTS.k,
    mode,
    variant: variant as GraphSearchVariant,
    // Left out, the walk's parameters default per variant (VARIANT_DEFAULTS).
    ...optional("entryPoints", positiveInt(values, "entry-points")),
    ...optional("ncandidates", positiveInt(values, "ncandidates")),
    ...optional("maxIter", positiveInt(values, "max-iter")),
    ...optional("proxySeeds", nonNegativeInt(values, "proxy-seeds")),
    earlyStop: values["no-early-stop"] !== true,
    seed,
  };
}

function parseSeed(value: unknown): number {
  if (typeof value !== "string" || !/^\d+$/.test(value) || Number(value) > LIMITS.seedMax) {
    throw new UsageError(`--seed must be an integer from 0 to ${LIMITS.seedMax}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
