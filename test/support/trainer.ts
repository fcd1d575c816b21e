/**
 * Runs the Python trainer (gpu-worker/train/) and the `hypencoder` CLI as child processes, for the
 * tests that check the trained checkpoints against the TypeScript/ONNX path.
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";

const ROOT = resolve(import.meta.dirname, "../..");
const run = promisify(execFile);

/** Debian's interpreter, which has python3-torch; `python3` on PATH may be another one. */
export const PYTHON = "/usr/bin/python3";
export const DEBIAN_CORPUS = join(ROOT, "infra/dev/corpus/debian-main.jsonl.gz");

export async function trainer(...args: string[]): Promise<string> {
  const { stdout } = await run(PYTHON, ["-m", "hypencoder_train", ...args], {
    cwd: ROOT,
    env: { ...process.env, PYTHONPATH: join(ROOT, "gpu-worker/train") },
    maxBuffer: 256 << 20,
  });
  return stdout;
}

export async function hypencoderCli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [join(ROOT, "bin/hypencoder.mjs"), ...args], { cwd: ROOT, maxBuffer: 256 << 20 });
  return stdout;
}

export interface CorpusDocument {
  id: string;
  title: string;
  text: string;
  metadata: { split: "train" | "dev" | "test"; tags: string[]; source: string };
}

export function readDebianCorpus(): CorpusDocument[] {
  return gunzipSync(readFileSync(DEBIAN_CORPUS))
    .toString("utf8")
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line) as CorpusDocument);
}

export function writeIdText(path: string, rows: { id: string; text: string }[]): void {
  writeFileSync(path, rows.map(({ id, text }) => JSON.stringify({ id, text })).join("\n") + "\n");
}

export type PairScores = Map<string, number>;

/** `score` output (both tools print {"query_id","doc_id","score"} lines) keyed "query\0doc". */
export function pairScores(jsonl: string): PairScores {
  const out: PairScores = new Map();
  for (const line of jsonl.trim().split("\n")) {
    const { query_id, doc_id, score } = JSON.parse(line) as { query_id: string; doc_id: string; score: number };
    out.set(`${query_id}\0${doc_id}`, score);
  }
  return out;
}

/**
 * The largest relative difference over all pairs: |a − b| / max(|b|, floor). The floor keeps scores
 * that happen to sit near zero from turning float32 rounding into a huge ratio.
 */
export function maxRelativeDifference(actual: PairScores, expected: PairScores, floor = 1): number {
  if (actual.size !== expected.size) throw new Error(`${actual.size} scores vs ${expected.size}`);
  let worst = 0;
  for (const [key, b] of expected) {
    const a = actual.get(key);
    if (a === undefined) throw new Error(`missing score for ${key.replace("\0", " / ")}`);
    worst = Math.max(worst, Math.abs(a - b) / Math.max(Math.abs(b), floor));
  }
  return worst;
}
