import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyCheckpoint } from "../fixture/tiny-checkpoint.ts";
import type { TensorMap } from "../types.ts";
import { knownBaseModel } from "./bert-dims.ts";
import { loadHypencoderCheckpoint } from "./hypencoder-checkpoint.ts";
import { encodeSafetensors, parseSafetensors } from "./safetensors.ts";

let root: string;
let template: string;
let counter = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "hypencoder-checkpoint-test-"));
  template = join(root, "template");
  await writeTinyCheckpoint(template);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh copy of the template checkpoint. */
async function copy(): Promise<string> {
  const dir = join(root, `case-${counter++}`);
  await cp(template, dir, { recursive: true });
  return dir;
}

// Tests edit raw JSON, so the config is untyped here on purpose.
type Json = any;

async function withConfig(edit: (config: Json) => void): Promise<string> {
  const dir = await copy();
  const path = join(dir, "config.json");
  const config = JSON.parse(await readFile(path, "utf8"));
  edit(config);
  await writeFile(path, JSON.stringify(config));
  return dir;
}

async function withTensors(edit: (tensors: TensorMap) => void): Promise<string> {
  const dir = await copy();
  const path = join(dir, "model.safetensors");
  const { tensors } = parseSafetensors(await readFile(path));
  edit(tensors);
  await writeFile(path, encodeSafetensors(tensors));
  return dir;
}

const converter = (c: Json) => c.query_encoder_kwargs.converter_kwargs;

describe("loadHypencoderCheckpoint", () => {
  it("returns the spec, prefix-free weights and source files", async () => {
    const { spec, weights, sourceFiles } = await loadHypencoderCheckpoint(template);
    expect(spec.baseModelName).toBe("hypencoder-search/tiny-random-bert_uncased_L-2_H-32_A-4");
    expect(spec.pooling).toBe("cls");
    expect(spec.sharedEncoder).toBe(true);
    expect(spec.bert.layerNormEps).toBe(1e-12);
    expect(weights.queryBert.has("embeddings.word_embeddings.weight")).toBe(true);
    expect(weights.queryBert.has("pooler.dense.weight")).toBe(false); // unused by Hypencoder: dropped
    expect(weights.hyperhead.get("key_projections.4.weight")!.shape).toEqual([32, 32]);
    expect(weights.hyperhead.get("hyper_base_vectors.1")!.shape).toEqual([1, 32]);
    expect(weights.hyperhead.get("bias_query_embeddings.0")!.shape).toEqual([1, 1, 32]);
    expect(weights.hyperhead.size).toBe(3 * 4 + 2 * 4 + 5 * 4);
    expect(sourceFiles.map((f) => f.name)).toEqual(["config.json", "model.safetensors"]);
    expect(sourceFiles[1].sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  describe("tensor errors name the tensor", () => {
    it("missing tensor", async () => {
      const dir = await withTensors((t) => t.delete("query_encoder.key_projections.3.weight"));
      await expect(loadHypencoderCheckpoint(dir)).rejects.toThrow(
        /missing tensor "query_encoder\.key_projections\.3\.weight" \(expected shape \[32, 32\]\)/,
      );
    });
    it("wrong shape", async () => {
      const name = "query_encoder.transformer.encoder.layer.1.output.dense.weight";
      const dir = await withTensors((t) => t.set(name, { shape: [32, 63], data: new Float32Array(32 * 63) }));
      await expect(loadHypencoderCheckpoint(dir)).rejects.toThrow(`tensor "${name}" has shape [32, 63], expected [32, 64]`);
    });
    it("unexpected tensor", async () => {
      const dir = await withTensors((t) => t.set("query_encoder.hyper_base_matrices.9", { shape: [1], data: new Float32Array(1) }));
      await expect(loadHypencoderCheckpoint(dir)).rejects.toThrow(/unexpected tensor "query_encoder\.hyper_base_matrices\.9"/);
    });
    it("tensor outside the dual encoder", async () => {
      const dir = await withTensors((t) => t.set("lm_head.weight", { shape: [1], data: new Float32Array(1) }));
      await expect(loadHypencoderCheckpoint(dir)).rejects.toThrow(/unexpected tensor "lm_head\.weight"/);
    });
    it("no BERT at all", async () => {
      const dir = await withTensors((t) => {
        for (const name of [...t.keys()]) if (name.includes(".transformer.")) t.delete(name);
      });
      await expect(loadHypencoderCheckpoint(dir)).rejects.toThrow(/no BERT tensors/);
    });
    it("separate encoders but only one BERT", async () => {
      const dir = await withConfig((c) => (c.shared_encoder = false));
      await expect(loadHypencoderCheckpoint(dir)).rejects.toThrow(/shared_encoder is false but there are no tensors under "passage_encoder\.transformer\."/);
    });
  });

  it("maps old LayerNorm gamma/beta names and ignores position_ids", async () => {
    const dir = await withTensors((t) => {
      const p = "query_encoder.transformer.embeddings.LayerNorm.";
      t.set(`${p}gamma`, t.get(`${p}weight`)!);
      t.set(`${p}beta`, t.get(`${p}bias`)!);
      t.delete(`${p}weight`);
      t.delete(`${p}bias`);
      t.set("query_encoder.transformer.embeddings.position_ids", { shape: [1, 128], data: new Float32Array(128) });
    });
    const { weights } = await loadHypencoderCheckpoint(dir);
    expect(weights.queryBert.get("embeddings.LayerNorm.weight")!.data).toEqual(new Float32Array(32).fill(1));
  });

  describe("config errors name the key and value", () => {
    it.each<[string, (c: Json) => void, RegExp]>([
      ["unknown activation", (c) => (converter(c).activation_type = "swish"), /converter_kwargs\.activation_type: unknown activation "swish"/],
      ["unknown pooling", (c) => (c.passage_encoder_kwargs.pooling_type = "max"), /passage_encoder_kwargs\.pooling_type: unknown pooling "max"/],
      ["last dim not 1", (c) => (converter(c).vector_dimensions = [32, 32, 32, 2]), /vector_dimensions: last entry must be 1/],
      ["too few dims", (c) => (converter(c).vector_dimensions = [32, 1]), /vector_dimensions: needs at least 3 entries/],
      ["dims not integers", (c) => (converter(c).vector_dimensions = [32, "x", 1]), /vector_dimensions\[1\]: expected number/],
      [
        "residual across unequal widths",
        (c) => (converter(c).vector_dimensions = [32, 16, 16, 1]),
        /hidden layer 0 maps 32 → 16 but has a residual connection/,
      ],
      [
        "residual on last without residual",
        (c) => Object.assign(converter(c), { do_residual: false, do_residual_on_last: true }),
        /do_residual_on_last: cannot be true when do_residual is false/,
      ],
      ["unknown converter key", (c) => (converter(c).use_swiglu = true), /converter_kwargs: unknown key\(s\) "use_swiglu"/],
      ["unknown embedding_representation", (c) => (c.query_encoder_kwargs.embedding_representation = "max"), /embedding_representation: unknown value "max"/],
      ["missing model name", (c) => delete c.query_encoder_kwargs.model_name_or_path, /query_encoder_kwargs\.model_name_or_path: is required/],
      ["q-net input ≠ hidden", (c) => (converter(c).vector_dimensions = [16, 16, 16, 1]), /vector_dimensions\[0\] is 16 but the BERT hidden size is 32/],
      ["base_encoder_output_dim ≠ hidden", (c) => (c.query_encoder_kwargs.base_encoder_output_dim = 768), /base_encoder_output_dim is 768/],
    ])("%s", async (_label, edit, message) => {
      await expect(loadHypencoderCheckpoint(await withConfig(edit))).rejects.toThrow(message);
    });

    it("accepts training-only and unrelated keys; null do_residual_on_last follows do_residual", async () => {
      const dir = await withConfig((c) => {
        Object.assign(converter(c), { do_dropout: true, dropout_prob: 0.2, do_residual_on_last: null });
        c.query_encoder_kwargs.embedding_representation = "mean";
        c.some_future_key = { anything: 1 };
      });
      const { spec } = await loadHypencoderCheckpoint(dir);
      expect(spec.qnet.doResidualOnLast).toBe(true);
    });
  });

  describe("attention head count", () => {
    it("comes from known base model names", () => {
      expect(knownBaseModel("google-bert/bert-base-uncased")).toEqual({ hiddenSize: 768, numHeads: 12 });
      expect(knownBaseModel("bert-base-cased")).toEqual({ hiddenSize: 768, numHeads: 12 });
      expect(knownBaseModel("bert-large-uncased")).toEqual({ hiddenSize: 1024, numHeads: 16 });
      expect(knownBaseModel("google/bert_uncased_L-4_H-256_A-4")).toEqual({ hiddenSize: 256, numHeads: 4 });
      expect(knownBaseModel("prajjwal1/bert-tiny")).toEqual({ hiddenSize: 128, numHeads: 2 });
      expect(knownBaseModel("my-org/my-bert")).toBeUndefined();
    });

    it("asks for --base-config when the name is unknown, and uses it when given", async () => {
      const dir = await withConfig((c) => (c.query_encoder_kwargs.model_name_or_path = "my-org/my-bert"));
      await expect(loadHypencoderCheckpoint(dir)).rejects.toThrow(/"my-org\/my-bert".*pass --base-config/);
      const { spec } = await loadHypencoderCheckpoint(dir, { baseConfigPath: join(dir, "bert_config.json") });
      expect(spec.bert.numHeads).toBe(4);
    });

    it("reads the BERT config carried in config.json as base_encoder_config, and checks it", async () => {
      const dir = await copy();
      const base = JSON.parse(await readFile(join(dir, "bert_config.json"), "utf8"));
      const embed = (edit: (c: Json) => void) =>
        withConfig((c) => {
          c.query_encoder_kwargs.model_name_or_path = "my-org/my-bert";
          c.base_encoder_config = { ...base };
          edit(c);
        });
      const { spec } = await loadHypencoderCheckpoint(await embed(() => {}));
      expect(spec.bert.numHeads).toBe(base.num_attention_heads);
      await expect(loadHypencoderCheckpoint(await embed((c) => (c.base_encoder_config.num_hidden_layers = 3)))).rejects.toThrow(
        /config\.json: base_encoder_config: num_hidden_layers is 3 but the checkpoint's tensors say 2/,
      );
      await expect(loadHypencoderCheckpoint(await embed((c) => delete c.base_encoder_config.num_attention_heads))).rejects.toThrow(
        /base_encoder_config: num_attention_heads: is required/,
      );
      // An explicit --base-config wins over the embedded one.
      const override = join(dir, "override.json");
      await writeFile(override, JSON.stringify({ ...base, num_attention_heads: 1 }));
      const overridden = await loadHypencoderCheckpoint(await embed(() => {}), { baseConfigPath: override });
      expect(overridden.spec.bert.numHeads).toBe(1);
    });

    it("refuses a known name whose hidden size disagrees with the tensors", async () => {
      const dir = await withConfig((c) => (c.query_encoder_kwargs.model_name_or_path = "bert-base-uncased"));
      await expect(loadHypencoderCheckpoint(dir)).rejects.toThrow(/hidden size 768 .* 32, so its head count is uncertain: pass --base-config/);
    });

    it("cross-checks --base-config against the tensors", async () => {
      const dir = await copy();
      const path = join(dir, "bert_config.json");
      const base = JSON.parse(await readFile(path, "utf8"));
      await writeFile(path, JSON.stringify({ ...base, num_hidden_layers: 3 }));
      await expect(loadHypencoderCheckpoint(dir, { baseConfigPath: path })).rejects.toThrow(
        /num_hidden_layers is 3 but the checkpoint's tensors say 2/,
      );
      await writeFile(path, JSON.stringify({ ...base, num_attention_heads: 5 }));
      await expect(loadHypencoderCheckpoint(dir, { baseConfigPath: path })).rejects.toThrow(/not divisible by 5 attention heads/);
      await writeFile(path, JSON.stringify({ ...base, hidden_act: "relu" }));
      await expect(loadHypencoderCheckpoint(dir, { baseConfigPath: path })).rejects.toThrow(/hidden_act "relu" is not supported/);
    });
  });

  it("reports missing files clearly", async () => {
    const empty = join(root, "empty");
    await expect(loadHypencoderCheckpoint(empty)).rejects.toThrow(/no config\.json/);
    const dir = await copy();
    await rm(join(dir, "model.safetensors"));
    await expect(loadHypencoderCheckpoint(dir)).rejects.toThrow(/no weights file \(expected model\.safetensors or pytorch_model\.bin\)/);
  });
});
