/**
 * The offline reference for exact search: `hypencoder score` run as a user would (the CLI, the same
 * model directory), its output indexed by query and document. Exact search over a set of documents
 * must reproduce these scores for exactly those documents.
 */
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const ROOT = resolve(import.meta.dirname, "../..");

export type TextDoc = { id: string; text: string };

const jsonl = (docs: TextDoc[]) => new TextEncoder().encode(docs.map((d) => JSON.stringify({ id: d.id, text: d.text })).join("\n") + "\n");

/** query id → doc id → score. `dir` receives the two input files (named by `label`). */
export async function scoreOffline(modelDir: string, dir: string, queries: TextDoc[], docs: TextDoc[], label = "offline"): Promise<Map<string, Map<string, number>>> {
  const queriesFile = join(dir, `${label}-queries.jsonl`);
  const docsFile = join(dir, `${label}-docs.jsonl`);
  await writeFile(queriesFile, jsonl(queries));
  await writeFile(docsFile, jsonl(docs));
  const { stdout } = await promisify(execFile)(process.execPath, ["bin/hypencoder.mjs", "score", "--model", modelDir, "--queries", queriesFile, "--docs", docsFile], {
    cwd: ROOT,
    maxBuffer: 64 * 2 ** 20,
  });
  const scores = new Map<string, Map<string, number>>();
  for (const line of stdout.split("\n")) {
    if (line.trim() === "") continue;
    const { query_id, doc_id, score } = JSON.parse(line) as { query_id: string; doc_id: string; score: number };
    if (!scores.has(query_id)) scores.set(query_id, new Map());
    scores.get(query_id)!.set(doc_id, score);
  }
  // Often run outside any one test (started in beforeAll), so it throws rather than asserting.
  if (scores.size !== queries.length || [...scores.values()].some((m) => m.size !== docs.length)) {
    throw new Error(`hypencoder score printed ${stdout.split("\n").length - 1} lines for ${queries.length} queries × ${docs.length} documents`);
  }
  return scores;
}
