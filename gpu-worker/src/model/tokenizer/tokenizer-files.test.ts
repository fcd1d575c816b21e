import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bertTokenizerJson } from "./bert-tokenizer-json.ts";
import { copyTokenizerFiles, parseVocabTxt } from "./tokenizer-files.ts";
import { BertTokenizer } from "./tokenizer.ts";
import { idsOf, TEST_VOCAB } from "../../../../test/support/test-vocab.ts";

/** Texts covering every rule, compared across the two loading paths. */
const TEXTS = [
  "Café naïve Ångström", "hello,world!! don't U.S.A.", "我爱北京 天安门 hello", "a\u{20000}b",
  "\u0000a\u0007b\u200bc", "I ❤️ 🍕", "unaffable unaffablez", "x".repeat(100), "x".repeat(101), "", "e\u0301",
];

let root: string;
const dir = (name: string) => join(root, name);
const vocabTxt = `${TEST_VOCAB.join("\n")}\n`;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "bert-tokenizer-"));
  const write = async (name: string, files: Record<string, string>) => {
    await mkdir(dir(name));
    for (const [file, text] of Object.entries(files)) await writeFile(join(dir(name), file), text);
  };
  await write("json", { "tokenizer.json": JSON.stringify(bertTokenizerJson(TEST_VOCAB, { lowercase: true })) });
  await write("vocab", { "vocab.txt": vocabTxt });
  await write("vocab-cased", { "vocab.txt": vocabTxt, "tokenizer_config.json": '{"do_lower_case": false}' });
  await write("json-config-cased", {
    "tokenizer.json": JSON.stringify(bertTokenizerJson(TEST_VOCAB, { lowercase: true })),
    "tokenizer_config.json": '{"do_lower_case": false, "model_max_length": 512}',
    "special_tokens_map.json": "{}",
  });
  await write("empty", {});
  await write("bad-json", { "tokenizer.json": "{" });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("BertTokenizer.fromDirectory", () => {
  it("gives identical ids from vocab.txt and from tokenizer.json", async () => {
    const fromJson = await BertTokenizer.fromDirectory(dir("json"));
    const fromVocab = await BertTokenizer.fromDirectory(dir("vocab"));
    for (const text of TEXTS) expect(fromVocab.tokenize(text, 512), JSON.stringify(text)).toEqual(fromJson.tokenize(text, 512));
    expect(fromVocab.tokenize("Café", 8)).toEqual(idsOf("[CLS]", "cafe", "[SEP]"));
    expect(fromVocab.vocabSize).toBe(fromJson.vocabSize);
  });

  it("reads do_lower_case from tokenizer_config.json", async () => {
    const cased = await BertTokenizer.fromDirectory(dir("vocab-cased"));
    expect(cased.tokenize("Hello", 8)).toEqual(idsOf("[CLS]", "[UNK]", "[SEP]"));
  });

  it("lets an explicit tokenizer_config.json override tokenizer.json, like BertTokenizerFast", async () => {
    const cased = await BertTokenizer.fromDirectory(dir("json-config-cased"));
    expect(cased.tokenize("Hello", 8)).toEqual(idsOf("[CLS]", "[UNK]", "[SEP]"));
  });

  it("fails clearly without tokenizer files", async () => {
    await expect(BertTokenizer.fromDirectory(dir("empty"))).rejects.toThrow(/expected tokenizer\.json or vocab\.txt/);
  });

  it("names a malformed tokenizer.json", async () => {
    await expect(BertTokenizer.fromDirectory(dir("bad-json"))).rejects.toThrow(/tokenizer\.json: invalid JSON/);
  });
});

describe("parseVocabTxt", () => {
  it("keeps line indices as ids and ignores only the final newline", () => {
    expect(parseVocabTxt("a\n\nb\n")).toEqual(["a", "", "b"]);
    expect(parseVocabTxt("a\nb")).toEqual(["a", "b"]);
  });

  it("refuses CRLF files", () => {
    expect(() => parseVocabTxt("a\r\nb\r\n", "m/vocab.txt")).toThrow(/m\/vocab\.txt: CRLF/);
  });
});

describe("copyTokenizerFiles", () => {
  it("copies the tokenizer files that exist", async () => {
    const dest = dir("copy-dest/nested");
    expect(await copyTokenizerFiles(dir("json-config-cased"), dest)).toEqual([
      "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    ]);
    expect((await readdir(dest)).sort()).toEqual(["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]);
    expect(await copyTokenizerFiles(dir("vocab"), dir("copy-vocab"))).toEqual(["vocab.txt"]);
  });

  it("fails when there is neither tokenizer.json nor vocab.txt", async () => {
    await expect(copyTokenizerFiles(dir("empty"), dir("copy-empty"))).rejects.toThrow(/expected tokenizer\.json or vocab\.txt/);
  });
});
