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

describe("committed model fidelity (models/debian-mini)", () => {
  it("PyTorch and the ONNX path give the same scores, within 1e-4 relative, on 300 test-split pairs", { timeout: 110_000 }, async () => {
    const modelDir = join(root, "debian-mini");
    await hypencoderCli("import", "models/debian-mini", "--out", modelDir);
    // 20 queries × 15 documents from the test split, spread over the corpus (every n-th package).
    const test = readDebianCorpus().filter((d) => d.metadata.split === "test");
    const step = Math.floor(test.length / 35);
    const picked = test.filter((_, i) => i % step === 0).slice(0, 35);
    const queries = picked.slice(0, 20).map((d) => ({ id: d.id, text: d.title }));
    const docs = picked.slice(20, 35);
    const docsPath = join(root, "fidelity-docs.jsonl");
    const queriesPath = join(root, "fidelity-queries.jsonl");
    writeIdText(docsPath, docs);
    writeIdText(queriesPath, queries);
    const onnx = pairScores(await hypencoderCli("score", "--model", modelDir, "--queries", queriesPath, "--docs", docsPath));
    const torch = pairScores(await trainer("score", "--model", "models/debian-mini", "--queries", queriesPath, "--docs", docsPath));
    expect(torch.size).toBe(300);
    expect(maxRelativeDifference(onnx, torch)).toBeLessThan(1e-4);
  });
});
