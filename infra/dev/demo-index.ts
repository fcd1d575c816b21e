/**
 * The dev stack's demo tenant, key and index `debian`, built from the Debian corpus
 * (infra/dev/corpus/debian-main.jsonl.gz) through the public API, as a user would: a presigned upload,
 * then a build.
 *
 * Encoding all 63,435 packages takes minutes on a laptop CPU, so the demo comes up in two steps:
 * first the ~3,100 applications and utilities (`isDemoPreview`), built before the stack says it is
 * ready; then the whole corpus, built in the background as the index's next version, which becomes
 * the active one when it succeeds (builds flip atomically). Both steps are remembered in
 * .dev/demo.json, so a restart with the same model reuses them, and a restart before the full build
 * finished starts it again. A different model (an index version records the model it was built
 * with) builds both again.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { type DebianPackage, isDemoPreview, readDebianCorpus } from "./corpus/debian-corpus.ts";
import { ApiRequestError, type BuildState, PublicApi } from "./public-api.ts";

export const DEMO = { tenant: "demo", index: "debian" };

export interface DemoState {
  apiKey: string;
  /** The model the index's versions were built with. */
  modelId?: string;
  /** What the active version holds. */
  corpus?: "preview" | "full";
}

export interface DemoOptions {
  edgeUrl: string;
  adminToken: string;
  devDir: string;
  modelId: string;
  log: (message: string) => void;
}

export interface SeededDemo {
  state: DemoState;
  /** The number of packages the active version holds. */
  docs: number;
  /** The full-corpus build, when it still has to run: resolves when it is done (or failed, logged). */
  fullCorpus?: () => Promise<void>;
}

const BUILD_OPTIONS = { storeFields: ["text", "title"] };

export async function seedDemo(options: DemoOptions): Promise<SeededDemo> {
  const { edgeUrl, log } = options;
  const path = join(options.devDir, "demo.json");
  const saved = await readState(path);
  const corpus = await readDebianCorpus();
  const preview = corpus.filter(isDemoPreview);

  let state: DemoState;
  if (saved && (await activeVersion(new PublicApi(edgeUrl, saved.apiKey))) && saved.modelId === options.modelId && saved.corpus) {
    state = saved;
  } else {
    const apiKey = saved && (await keyWorks(edgeUrl, saved.apiKey)) ? saved.apiKey : await newKey(edgeUrl, options.adminToken);
    await save(path, { apiKey });
    const api = new PublicApi(edgeUrl, apiKey);
    await api.createIndex(DEMO.index).catch(ignoreConflict);
    log(`building the demo index from ${preview.length.toLocaleString("en-US")} Debian applications and utilities (the full corpus follows in the background)`);
    const done = await build(api, preview, log);
    if (done.state !== "succeeded") throw new Error(`demo build failed: ${done.error?.message ?? done.state}`);
    state = { apiKey, modelId: options.modelId, corpus: "preview" };
    await save(path, state);
  }
  if (state.corpus === "full") return { state, docs: corpus.length };

  const api = new PublicApi(edgeUrl, state.apiKey);
  const fullCorpus = async () => {
    log(`building the full corpus (${corpus.length.toLocaleString("en-US")} packages) in the background; searches keep using the preview until it is done`);
    const started = Date.now();
    try {
      const done = await withRetries(() => build(api, corpus, (line) => log(`full corpus: ${line}`), 3 * 3_600_000), log);
      if (done.state !== "succeeded") {
        log(`full-corpus build failed (${done.error?.message ?? done.state}); the preview stays active, and the next start tries again`);
        return;
      }
      state = { ...state, corpus: "full" };
      await save(path, state);
      log(`the demo index now holds all ${corpus.length.toLocaleString("en-US")} packages (version ${done.version}, built in ${Math.round((Date.now() - started) / 1000)} s)`);
    } catch (error) {
      if (error instanceof ApiRequestError && error.code === "build_in_progress") {
        log("a full-corpus build is still recorded as running (from before a restart); the next start tries again");
      } else {
        log(`full-corpus build failed: ${describe(error)}`);
      }
    }
  };
  return { state, docs: preview.length, fullCorpus };
}

/** Uploads `docs` as gzipped JSONL through a presigned URL and builds a version from them. */
async function build(api: PublicApi, docs: DebianPackage[], log: (line: string) => void, timeoutMs = 600_000): Promise<BuildState> {
  const lines = docs.map((d) => JSON.stringify({ id: d.id, title: d.title, text: d.text }));
  const uploadId = await api.upload(DEMO.index, [{ name: "debian.jsonl.gz", body: gzipSync(`${lines.join("\n")}\n`) }]);
  const started = await api.startBuild(DEMO.index, uploadId, BUILD_OPTIONS);
  let lastLine = "";
  return api.waitForBuild(DEMO.index, started.id, {
    timeoutMs,
    onProgress: (b) => {
      const p = b.progress ?? {};
      // Whole tenths, so the log says how far it is without a line per poll.
      const encoded = Math.floor((10 * (p.docsEncoded ?? 0)) / Math.max(1, p.docsTotal ?? docs.length)) * 10;
      const line = `build ${b.state}: ${encoded}% of ${docs.length.toLocaleString("en-US")} docs encoded, graph ${Math.floor((p.graphPercent ?? 0) / 25) * 25}%`;
      if (line !== lastLine) log((lastLine = line));
    },
  });
}

const RETRIES = 3;

/**
 * Retries on network errors (fetch's TypeError), which the busy local stack gives now and then while
 * it is still encoding; an answer from the API (ApiRequestError) is final.
 */
async function withRetries<T>(run: () => Promise<T>, log: (message: string) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (error instanceof ApiRequestError || attempt === RETRIES) throw error;
      log(`full corpus: ${describe(error)}; trying again in 5 s`);
      await new Promise((r) => setTimeout(r, 5_000));
    }
  }
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { message?: string } }).cause?.message;
  return `${(error as Error).message}${cause ? ` (${cause})` : ""}`;
}

async function readState(path: string): Promise<DemoState | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as DemoState;
  } catch {
    return undefined;
  }
}

function save(path: string, state: DemoState): Promise<void> {
  return writeFile(path, JSON.stringify(state), { mode: 0o600 });
}

async function activeVersion(api: PublicApi): Promise<number | undefined> {
  const response = await api.request("GET", `/v1/indexes/${DEMO.index}`);
  return response.ok ? ((await response.json()) as { activeVersion?: number }).activeVersion : undefined;
}

async function keyWorks(edgeUrl: string, apiKey: string): Promise<boolean> {
  return (await new PublicApi(edgeUrl, apiKey).request("GET", "/v1/indexes")).ok;
}

async function newKey(edgeUrl: string, adminToken: string): Promise<string> {
  const admin = PublicApi.admin(edgeUrl, adminToken);
  await admin.createTenant(DEMO.tenant, "Demo tenant").catch(ignoreConflict);
  return admin.createKey(DEMO.tenant, ["search", "manage"]);
}

function ignoreConflict(error: unknown): void {
  if (!(error instanceof ApiRequestError && error.status === 409)) throw error;
}
