/**
 * The Python trainer (gpu-worker/train/) end to end: a few training steps on a few hundred pairs, the
 * HF-layout export (model.safetensors, and a torch.save pytorch_model.bin copy), `hypencoder import`
 * with no flag, and scores through the TypeScript/ONNX path that equal PyTorch's.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  hypencoderCli,
  maxRelativeDifference,
  pairScores,
  readDebianCorpus,
  trainer,
  writeIdText,
} from "./support/trainer.ts";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "trainer-test-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("training smoke test", () => {
  it("trains a few steps, exports, imports with no flag and scores like PyTorch", { timeout: 110_000 }, async () => {
    const checkpoint = join(root, "checkpoint");
    const log = await trainer(
      "train", "--kind", "hypencoder", "--aux-dot-weight", "0.5", "--out", checkpoint, "--work", join(root, "work"),
      "--max-train-docs", "300", "--max-steps", "4", "--batch", "16", "--vocab-size", "1500",
      "--hidden", "32", "--layers", "1", "--heads", "2", "--qnet-hidden-layers", "2", "--doc-max-length", "64",
      "--eval-docs", "100", "--eval-queries", "20",
    );
    const done = log.trim().split("\n").map((l) => JSON.parse(l)).find((r) => r.event === "done");
    expect(done).toMatchObject({ steps: 4 });
    expect((await readdir(checkpoint)).sort()).toEqual(
      ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "training.json", "vocab.txt"],
    );
    const config = JSON.parse(await readFile(join(checkpoint, "config.json"), "utf8"));
    expect(config.base_encoder_config).toMatchObject({ hidden_size: 32, num_attention_heads: 2, num_hidden_layers: 1 });

    // The same weights as a torch.save pytorch_model.bin: the importer must read it with no special case.
    const binCheckpoint = join(root, "checkpoint-bin");
    await trainer("to-torch-bin", checkpoint, binCheckpoint);
    expect(await readdir(binCheckpoint)).toContain("pytorch_model.bin");

    const imported = join(root, "imported");
    const importedBin = join(root, "imported-bin");
    await hypencoderCli("import", checkpoint, "--out", imported);
    await hypencoderCli("import", binCheckpoint, "--out", importedBin);
    const manifest = JSON.parse(await readFile(join(imported, "manifest.json"), "utf8"));
    expect(manifest.bert).toMatchObject({ hiddenSize: 32, numHeads: 2, numLayers: 1, maxPositions: 64 });
    expect(JSON.parse(await readFile(join(importedBin, "manifest.json"), "utf8")).modelId).toBe(manifest.modelId);

    const docs = readDebianCorpus().filter((d) => d.metadata.split === "dev").slice(0, 12);
    const queries = docs.slice(0, 6).map((d) => ({ id: d.id, text: d.title }));
    const docsPath = join(root, "docs.jsonl");
    const queriesPath = join(root, "queries.jsonl");
    writeIdText(docsPath, docs);
    writeIdText(queriesPath, queries);
    const onnx = pairScores(await hypencoderCli("score", "--model", imported, "--queries", queriesPath, "--docs", docsPath));
    const torch = pairScores(await trainer("score", "--model", checkpoint, "--queries", queriesPath, "--docs", docsPath));
    expect(onnx.size).toBe(72);
    expect(maxRelativeDifference(onnx, torch)).toBeLessThan(1e-4);
    // A trained q-net tells documents apart: the scores of one query are not all equal.
    const firstQuery = [...torch].filter(([k]) => k.startsWith(`${queries[0]!.id}\0`)).map(([, s]) => s);
    expect(Math.max(...firstQuery) - Math.min(...firstQuery)).toBeGreaterThan(1e-3);
  });
});

describe("committed model (models/debian-mini)", () => {
  it("scores like PyTorch within 1e-4 relative and reproduces its model card's known-item MRR@10", { timeout: 110_000 }, async () => {
    const modelDir = join(root, "debian-mini");
    await hypencoderCli("import", "models/debian-mini", "--out", modelDir);
    // The model card's fixed subset: every n-th of the test split's packages, 200 of them, each one's
    // synopsis the query and the 200 full texts the collection (gpu-worker/train evaluate --subset 200).
    const test = readDebianCorpus().filter((d) => d.metadata.split === "test");
    const step = Math.floor(test.length / 200);
    const docs = Array.from({ length: 200 }, (_, i) => test[i * step]!);
    const queries = docs.map((d) => ({ id: d.id, text: d.title }));
    const docsPath = join(root, "subset-docs.jsonl");
    const queriesPath = join(root, "subset-queries.jsonl");
    writeIdText(docsPath, docs);
    writeIdText(queriesPath, queries);
    const onnx = pairScores(await hypencoderCli("score", "--model", modelDir, "--queries", queriesPath, "--docs", docsPath));
    const torch = pairScores(await trainer("score", "--model", "models/debian-mini", "--queries", queriesPath, "--docs", docsPath));
    expect(torch.size).toBe(40_000);
    expect(maxRelativeDifference(onnx, torch)).toBeLessThan(1e-4);

    let reciprocalRanks = 0;
    for (const q of queries) {
      const ranked = docs.map((d) => ({ id: d.id, score: onnx.get(`${q.id}\0${d.id}`)! })).sort((a, b) => b.score - a.score);
      const rank = ranked.findIndex((r) => r.id === q.id);
      if (rank < 10) reciprocalRanks += 1 / (rank + 1);
    }
    const card = await readFile("models/debian-mini/README.md", "utf8");
    const recorded = /Fixed-subset known-item MRR@10[^:]*: ([0-9.]+)/.exec(card)?.[1];
    expect(recorded, "the model card records the fixed-subset MRR@10").toBeDefined();
    expect(reciprocalRanks / queries.length).toBeCloseTo(Number(recorded), 3);
  });
});
