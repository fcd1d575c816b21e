/**
 * The whole model path, as a user runs it: tiny HF checkpoint → `importCheckpoint` → runtime on
 * onnxruntime-node → q-nets, embeddings and scores. Scores must equal an independent plain-TypeScript
 * implementation of the published formulas (test/reference) for every q-net flag combination.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { float32ArrayToHalf, halfToFloat32Array } from "../shared/qnet/half.ts";
import type { QNetArchitecture } from "../shared/qnet/types.ts";
import { loadHypencoderCheckpoint } from "../gpu-worker/src/model/checkpoint/hypencoder-checkpoint.ts";
import { type TinyCheckpointOptions, writeTinyCheckpoint } from "../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../gpu-worker/src/model/import-checkpoint.ts";
import { HypencoderRuntime } from "../gpu-worker/src/model/runtime/runtime.ts";
import { BertTokenizer } from "../gpu-worker/src/model/tokenizer/tokenizer.ts";
import { referenceBertForward, referencePool } from "./reference/bert.ts";
import { referenceHyperhead, referenceQNetScore } from "./reference/hypernetwork.ts";

const QUERIES = ["what is a hypernetwork?", "Café naïve", "graph search over document embeddings with small neural networks"];
const DOCS = [
  "A hypernetwork produces the weights of another network.",
  "short",
  "Debian packages ship descriptions of their contents; some are long, and some are very short indeed.",
  "北京 and 東京 are cities",
];

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "hypencoder-model-test-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function close(actual: number, expected: number): boolean {
  return Math.abs(actual - expected) <= 1e-4 * Math.max(1, Math.abs(expected));
}

/** Reference scores for every (query, doc) pair, computed from the checkpoint with plain TypeScript. */
async function referenceScores(checkpointDir: string, queryMaxLength: number, docMaxLength: number): Promise<number[][]> {
  const { spec, weights } = await loadHypencoderCheckpoint(checkpointDir);
  const tokenizer = await BertTokenizer.fromDirectory(checkpointDir);
  const embed = (text: string) => {
    const ids = tokenizer.tokenize(text, docMaxLength);
    const mask = ids.map(() => 1);
    return referencePool(referenceBertForward(ids, mask, spec.bert, weights.passageBert), mask, spec.pooling);
  };
  const docEmbeddings = DOCS.map(embed);
  return QUERIES.map((text) => {
    const ids = tokenizer.tokenize(text, queryMaxLength);
    const mask = ids.map(() => 1);
    const hidden = referenceBertForward(ids, mask, spec.bert, weights.queryBert);
    const qnet = { ...spec.qnet, ...referenceHyperhead(hidden, mask, spec.qnet, weights.hyperhead) };
    return docEmbeddings.map((x) => referenceQNetScore(qnet, x));
  });
}

async function runtimeScores(modelDir: string): Promise<number[][]> {
  const runtime = await HypencoderRuntime.load(modelDir, { device: "cpu" });
  try {
    const embeddings = await runtime.embedDocuments(DOCS, { batchSize: 3 });
    const qnets = await runtime.encodeQueries(QUERIES, { batchSize: 2 });
    return await Promise.all(qnets.map(async (qnet) => Array.from(await runtime.score(qnet, embeddings, { batchSize: 3 }))));
  } finally {
    await runtime.close();
  }
}

async function importTiny(name: string, options: TinyCheckpointOptions): Promise<{ checkpointDir: string; modelDir: string }> {
  const checkpointDir = join(root, `${name}-checkpoint`);
  const modelDir = join(root, `${name}-model`);
  await writeTinyCheckpoint(checkpointDir, options);
  await importCheckpoint(checkpointDir, modelDir);
  return { checkpointDir, modelDir };
}

const VARIANTS: Array<{ name: string; qnet?: Partial<QNetArchitecture>; pooling?: "cls" | "mean" }> = [
  { name: "published defaults" },
  { name: "layer norm after residual", qnet: { layerNormBeforeResidual: false } },
  { name: "gelu activation", qnet: { activation: "gelu" } },
  { name: "tanh, no layer norm", qnet: { activation: "tanh", doLayerNorm: false } },
  { name: "residual on last hidden layer", qnet: { doResidualOnLast: true } },
  { name: "no residual, sigmoid", qnet: { doResidual: false, activation: "sigmoid" } },
  { name: "leaky relu, 3 hidden layers", qnet: { activation: "leaky_relu", dims: [32, 32, 32, 32, 1] } },
  { name: "1 hidden layer", qnet: { dims: [32, 32, 1] } },
  { name: "mean pooling", pooling: "mean" },
];

describe("ONNX runtime scores equal the plain-TypeScript reference", () => {
  for (const [index, variant] of VARIANTS.entries()) {
    it(variant.name, async () => {
      const { checkpointDir, modelDir } = await importTiny(`variant${index}`, {
        seed: 100 + index,
        ...(variant.qnet ? { qnet: variant.qnet } : {}),
        ...(variant.pooling ? { pooling: variant.pooling } : {}),
      });
      const expected = await referenceScores(checkpointDir, 64, 128);
      const actual = await runtimeScores(modelDir);
      for (let q = 0; q < QUERIES.length; q++) {
        for (let d = 0; d < DOCS.length; d++) {
          expect(close(actual[q]![d]!, expected[q]![d]!), `query ${q} doc ${d}: ${actual[q]![d]} vs ${expected[q]![d]}`).toBe(true);
        }
      }
      // Random models still have to tell documents apart, or the comparison above proves little.
      expect(new Set(actual[0]!.map((s) => s.toFixed(6))).size).toBe(DOCS.length);
    });
  }
});

describe("checkpoint storage variants", () => {
  it("safetensors and .bin, with and without the duplicated encoder, import to the same model and scores", async () => {
    const variants: TinyCheckpointOptions[] = [
      { format: "safetensors", duplicateEncoder: false },
      { format: "safetensors", duplicateEncoder: true },
      { format: "bin", duplicateEncoder: false },
      { format: "bin", duplicateEncoder: true },
    ];
    const results = [];
    for (const [i, variant] of variants.entries()) {
      const { modelDir } = await importTiny(`storage${i}`, { seed: 7, ...variant });
      const runtime = await HypencoderRuntime.load(modelDir, { device: "cpu" });
      results.push({ modelId: runtime.manifest.modelId, scores: null as number[][] | null });
      await runtime.close();
      results[i]!.scores = await runtimeScores(modelDir);
    }
    for (const result of results.slice(1)) {
      // Identical weights give byte-identical graphs, hence one content address and identical scores.
      expect(result.modelId).toBe(results[0]!.modelId);
      expect(result.scores).toEqual(results[0]!.scores);
    }
  });
});

describe("runtime input checks", () => {
  it("rejects token limits beyond the model's positions and q-nets of another shape", async () => {
    const { modelDir } = await importTiny("checks", { seed: 3 });
    const runtime = await HypencoderRuntime.load(modelDir, { device: "cpu" });
    try {
      await expect(runtime.embedDocuments(["x"], { maxLength: 100_000 })).rejects.toThrow(/max length must be an integer from 2 to 128/);
      const [qnet] = await runtime.encodeQueries(["q"]);
      await expect(runtime.score(qnet!, new Float32Array(31))).rejects.toThrow(/not a whole number of 32-wide rows/);
      await expect(runtime.score({ ...qnet!, dims: [32, 32, 1] }, new Float32Array(32))).rejects.toThrow(/do not match/);
      expect(runtime.devices.get("queryEncoder")).toBe("cpu");
    } finally {
      await runtime.close();
    }
  });
});

describe("prepared q-nets and float16 embeddings", () => {
  it("scores float16 rows like float32 rows of the same (half-rounded) values", async () => {
    const { modelDir } = await importTiny("fp16", { seed: 9 });
    const runtime = await HypencoderRuntime.load(modelDir, { device: "cpu" });
    try {
      const embeddings = await runtime.embedDocuments(DOCS);
      const half = float32ArrayToHalf(embeddings);
      const [qnet] = await runtime.encodeQueries(["fp16 storage"]);
      const expected = await runtime.score(qnet!, halfToFloat32Array(half));
      const prepared = await runtime.prepareQNet(qnet!);
      const fromHalf = await prepared.score(half.slice());
      const again = await prepared.score(half.slice());
      await prepared.release();
      for (let d = 0; d < DOCS.length; d++) expect(close(fromHalf[d]!, expected[d]!)).toBe(true);
      expect(again).toEqual(fromHalf);
      await expect(prepared.score(half.slice())).rejects.toThrow(/not registered/);
    } finally {
      await runtime.close();
    }
  });
});

describe("a failed import leaves nothing behind", () => {
  const corruptions: Array<{ name: string; corrupt: (dir: string) => Promise<void>; error: RegExp }> = [
    {
      name: "a truncated safetensors file",
      corrupt: async (dir) => {
        const bytes = await readFile(join(dir, "model.safetensors"));
        await writeFile(join(dir, "model.safetensors"), bytes.subarray(0, bytes.length - 100));
      },
      error: /safetensors/i,
    },
    {
      name: "an unknown activation in config.json",
      corrupt: async (dir) => {
        const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8"));
        config.query_encoder_kwargs.converter_kwargs.activation_type = "swish";
        await writeFile(join(dir, "config.json"), JSON.stringify(config));
      },
      error: /activation_type.*swish|swish.*activation_type/,
    },
  ];
  for (const [i, { name, corrupt, error }] of corruptions.entries()) {
    it(`keeps no half-written model directory after ${name}`, async () => {
      const checkpointDir = join(root, `broken${i}-checkpoint`);
      const parent = join(root, `broken${i}-out`);
      await writeTinyCheckpoint(checkpointDir, { seed: 1 });
      await corrupt(checkpointDir);
      await mkdir(parent);
      await expect(importCheckpoint(checkpointDir, join(parent, "model"))).rejects.toThrow(error);
      expect(await readdir(parent)).toEqual([]);
    });
  }

  it("refuses to overwrite an existing model directory unless forced", async () => {
    const { checkpointDir, modelDir } = await importTiny("overwrite", { seed: 5 });
    await expect(importCheckpoint(checkpointDir, modelDir)).rejects.toThrow(/already exists \(pass --force/);
    const manifest = await importCheckpoint(checkpointDir, modelDir, { force: true });
    expect(manifest.modelId).toMatch(/^[0-9a-f]{64}$/);
  });
});
