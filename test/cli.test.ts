/**
 * The `hypencoder` CLI contract (import / embed / score), run as a user runs it: a child process of
 * bin/hypencoder.mjs, JSONL on stdout, progress on stderr, one-line errors and non-zero exits.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyCheckpoint } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { HypencoderRuntime } from "../gpu-worker/src/model/runtime/runtime.ts";

const BIN = resolve(import.meta.dirname, "../bin/hypencoder.mjs");
const run = promisify(execFile);

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function hypencoder(...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const jsonLines = (text: string) => text.trim().split("\n").map((line) => JSON.parse(line));

let root: string;
let modelDir: string;
let docsPath: string;
let queriesPath: string;
const DOCS = [
  { id: "d1", text: "Hypernetworks produce the weights of other networks." },
  { id: 2, text: "A numeric id is kept as a number." },
  { id: "d3", text: "" },
];
const QUERIES = [
  { id: "q1", text: "what produces weights?" },
  { id: "q2", text: "numbers" },
];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "hypencoder-cli-test-"));
  const checkpointDir = join(root, "checkpoint");
  await writeTinyCheckpoint(checkpointDir, { seed: 11, format: "bin", duplicateEncoder: true });
  modelDir = join(root, "model");
  docsPath = join(root, "docs.jsonl");
  queriesPath = join(root, "queries.jsonl");
  await writeFile(docsPath, DOCS.map((d) => JSON.stringify(d)).join("\n") + "\n");
  await writeFile(queriesPath, QUERIES.map((q) => JSON.stringify(q)).join("\n") + "\n");
  const imported = await hypencoder("import", checkpointDir, "--out", modelDir);
  expect(imported.stderr).toContain("building query_encoder.onnx");
  expect(imported.code).toBe(0);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("hypencoder embed", () => {
  it("prints one {id, embedding} line per document, ids as given", async () => {
    const { code, stdout } = await hypencoder("embed", "--model", modelDir, "--docs", docsPath, "--doc-max-length", "16");
    expect(code).toBe(0);
    const lines = jsonLines(stdout);
    expect(lines.map((l) => l.id)).toEqual(["d1", 2, "d3"]);
    for (const line of lines) {
      expect(Object.keys(line)).toEqual(["id", "embedding"]);
      expect(line.embedding).toHaveLength(32);
      expect(line.embedding.every(Number.isFinite)).toBe(true);
    }
  });
});

describe("hypencoder score", () => {
  it("prints every (query, doc) pair with the runtime's scores", async () => {
    const { code, stdout, stderr } = await hypencoder("score", "--model", modelDir, "--queries", queriesPath, "--docs", docsPath);
    expect(code).toBe(0);
    expect(stderr).toMatch(/embedding documents: 3\/3 \(100%\)/);
    const lines = jsonLines(stdout);
    expect(lines.map((l) => [l.query_id, l.doc_id])).toEqual([
      ["q1", "d1"], ["q1", 2], ["q1", "d3"],
      ["q2", "d1"], ["q2", 2], ["q2", "d3"],
    ]);
    const runtime = await HypencoderRuntime.load(modelDir, { device: "cpu" });
    try {
      const embeddings = await runtime.embedDocuments(DOCS.map((d) => d.text));
      const qnets = await runtime.encodeQueries(QUERIES.map((q) => q.text));
      for (const [q, qnet] of qnets.entries()) {
        const expected = Array.from(await runtime.score(qnet, embeddings));
        const printed = lines.slice(q * DOCS.length, (q + 1) * DOCS.length).map((l) => l.score);
        expect(printed).toEqual(expected);
      }
    } finally {
      await runtime.close();
    }
  });
});

describe("errors", () => {
  it("names the file and line of invalid input", async () => {
    const bad = join(root, "bad.jsonl");
    await writeFile(bad, '{"id":"a","text":"ok"}\n{"id":"b"}\n');
    const { code, stdout, stderr } = await hypencoder("embed", "--model", modelDir, "--docs", bad);
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr.trim()).toBe(`hypencoder embed: ${bad}:2: field "text": Invalid input: expected string, received undefined`);
  });

  it("refuses duplicate ids", async () => {
    const dup = join(root, "dup.jsonl");
    await writeFile(dup, '{"id":"a","text":"x"}\n{"id":"a","text":"y"}\n');
    const { code, stderr } = await hypencoder("embed", "--model", modelDir, "--docs", dup);
    expect(code).toBe(1);
    expect(stderr).toContain(`${dup}:2: duplicate id "a" (first on line 1)`);
  });

  it("explains usage errors with exit code 2", async () => {
    const missing = await hypencoder("score", "--model", modelDir, "--docs", docsPath);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^hypencoder score: missing --queries\nusage: hypencoder score/);
    const badNumber = await hypencoder("embed", "--model", modelDir, "--docs", docsPath, "--doc-max-length", "12x");
    expect(badNumber.code).toBe(2);
    expect(badNumber.stderr).toContain('--doc-max-length must be a positive integer, got "12x"');
    const unknown = await hypencoder("frobnicate");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
  });

  it("says when a directory is not a model", async () => {
    const { code, stderr } = await hypencoder("embed", "--model", root, "--docs", docsPath);
    expect(code).toBe(1);
    expect(stderr).toContain("is not a model directory: manifest.json is missing");
  });
});
