/**
 * The Debian collection the relevance and trained-walk benchmarks share: its queries (known-item and
 * tag queries, with judgements), the trained model imported once, and the collection indexed once by
 * the service's build pipeline, all cached under a directory keyed by the checkpoint's content.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildRequestSchema } from "../../shared/api/worker-api.ts";
import { MANIFEST_FILE } from "../../shared/index/keys.ts";
import { runBuild } from "../../gpu-worker/src/index/build/run-build.ts";
import { importCheckpoint } from "../../gpu-worker/src/model/import-checkpoint.ts";
import { MODEL_MANIFEST_FILE } from "../../gpu-worker/src/model/model-manifest.ts";
import type { HypencoderRuntime } from "../../gpu-worker/src/model/runtime/runtime.ts";
import { seededRandom } from "../../gpu-worker/src/search/random.ts";
import { LocalStore } from "../../gpu-worker/src/store/local-store.ts";
import { type DebianPackage, hasLongDescription } from "../../infra/dev/corpus/debian-corpus.ts";

const TAG_QUERIES = new URL("./tag-queries.json", import.meta.url);
/** Bumped when the build pipeline writes shards differently, so cached indexes are rebuilt. */
const INDEX_LAYOUT = "proxy1";
const log = (message: string) => process.stderr.write(`[debian] ${message}\n`);

export interface Query {
  text: string;
  relevant: Set<string>;
}

interface TagQuery {
  query: string;
  tags: string[];
}

async function timed<T>(run: () => Promise<T> | T): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
}

/** A seeded sample of the test split's packages with a long description; each one's synopsis finds it. */
export function knownItemQueries(corpus: DebianPackage[], count: number, seed: number): Query[] {
  const pool = corpus.filter((d) => d.metadata.split === "test" && hasLongDescription(d));
  const rand = seededRandom(seed);
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, count).map((d) => ({ text: d.title, relevant: new Set([d.id]) }));
}

export async function tagQueries(corpus: DebianPackage[]): Promise<Query[]> {
  const { queries } = JSON.parse(await readFile(TAG_QUERIES, "utf8")) as { queries: TagQuery[] };
  return queries.map((q) => ({
    text: q.query,
    relevant: new Set(corpus.filter((d) => q.tags.every((t) => d.metadata.tags.includes(t))).map((d) => d.id)),
  }));
}


/** sha256 over a checkpoint directory's files (names and bytes): the cache key of everything derived from it. */
export async function checkpointKey(dir: string): Promise<string> {
  const hash = createHash("sha256");
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    if (!(await stat(path)).isFile()) continue;
    hash.update(`${name}\0`).update(await readFile(path)).update("\0");
  }
  return hash.digest("hex").slice(0, 16);
}

export async function importedModel(checkpoint: string, CACHE: string): Promise<{ dir: string; key: string }> {
  const key = await checkpointKey(checkpoint);
  const dir = join(CACHE, `model-${key}`);
  const ready = await stat(join(dir, MODEL_MANIFEST_FILE)).then(() => true, () => false);
  if (!ready) {
    log(`importing ${checkpoint}`);
    await importCheckpoint(checkpoint, dir, { force: true });
  }
  return { dir, key };
}

/** The collection indexed by the service's build pipeline at the build defaults, once per model. */
export async function builtIndex(runtime: HypencoderRuntime, docs: { id: string; text: string }[], key: string, CACHE: string): Promise<LocalStore> {
  // The layout version: an index built before shards carried a proxy index (issue 14) is rebuilt.
  const root = join(CACHE, `index-${key}-${INDEX_LAYOUT}`);
  const store = new LocalStore(join(root, "index"));
  if (await store.head(MANIFEST_FILE)) return store;
  await rm(root, { recursive: true, force: true });
  await mkdir(join(root, "input"), { recursive: true });
  await writeFile(join(root, "input", "docs.jsonl"), docs.map((d) => JSON.stringify(d)).join("\n") + "\n");
  log(`Hypencoder: building the index of ${docs.length} documents (encoding them; cached for later runs)`);
  let lastLine = "";
  const { value: manifest, ms } = await timed(() =>
    runBuild(
      buildRequestSchema.parse({ tenant: "bench", index: "relevance", version: 1, inputs: [{ format: "jsonl", key: "docs.jsonl" }], storeFields: [] }),
      {
        runtime,
        store,
        inputStore: new LocalStore(join(root, "input")),
        prefix: "",
        onProgress: ({ state, progress }) => {
          const line = `${state ?? ""} ${progress?.docsEncoded !== undefined ? `${Math.floor(progress.docsEncoded / 5000) * 5000} encoded` : ""}${progress?.graphPercent !== undefined ? ` graph ${Math.floor(progress.graphPercent / 25) * 25}%` : ""}`;
          if (line !== lastLine) log(`Hypencoder build: ${(lastLine = line)}`);
        },
        onWarning: (message) => log(`build warning: ${message}`),
      },
    ),
  );
  log(`Hypencoder: index built in ${(ms / 1000).toFixed(0)} s (degree ${manifest.graph.degree}, reachable ${manifest.graph.reachableFraction})`);
  return store;
}

