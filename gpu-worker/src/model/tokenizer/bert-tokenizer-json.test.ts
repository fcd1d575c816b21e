import { describe, expect, it } from "vitest";
import { bertTokenizerJson, vocabToMap } from "./bert-tokenizer-json.ts";

const VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "##lo"];

describe("bertTokenizerJson", () => {
  it("produces what BertTokenizerFast saves", () => {
    const json = bertTokenizerJson(VOCAB, { lowercase: true });
    expect(json).toMatchObject({
      truncation: null,
      padding: null,
      normalizer: {
        type: "BertNormalizer",
        clean_text: true,
        handle_chinese_chars: true,
        strip_accents: null,
        lowercase: true,
      },
      pre_tokenizer: { type: "BertPreTokenizer" },
      post_processor: {
        type: "TemplateProcessing",
        single: [
          { SpecialToken: { id: "[CLS]", type_id: 0 } },
          { Sequence: { id: "A", type_id: 0 } },
          { SpecialToken: { id: "[SEP]", type_id: 0 } },
        ],
        special_tokens: { "[CLS]": { ids: [2] }, "[SEP]": { ids: [3] } },
      },
      decoder: { type: "WordPiece", prefix: "##", cleanup: true },
      model: {
        type: "WordPiece",
        unk_token: "[UNK]",
        continuing_subword_prefix: "##",
        max_input_chars_per_word: 100,
      },
    });
    expect({ ...(json.model as { vocab: object }).vocab }).toEqual({
      "[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, hello: 5, "##lo": 6,
    });
    expect((json.added_tokens as Array<{ id: number; content: string; special: boolean }>).map((t) => [t.id, t.content, t.special]))
      .toEqual([[0, "[PAD]", true], [1, "[UNK]", true], [2, "[CLS]", true], [3, "[SEP]", true], [4, "[MASK]", true]]);
  });

  it("passes lowercase and strip_accents through", () => {
    const json = bertTokenizerJson(VOCAB, { lowercase: false, stripAccents: true });
    expect(json.normalizer).toMatchObject({ lowercase: false, strip_accents: true });
  });

  it("survives a JSON round trip (what the fixture generator writes)", () => {
    const json = bertTokenizerJson(VOCAB, { lowercase: true });
    const parsed = JSON.parse(JSON.stringify(json)) as { model: { vocab: object } };
    expect(parsed.model.vocab).toEqual({ ...(json.model as { vocab: object }).vocab });
  });
});

describe("vocabToMap", () => {
  it("uses line indices, last duplicate wins, empty lines keep their id (HF load_vocab)", () => {
    const map = vocabToMap(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "", "a", "constructor"]);
    expect({ ...map }).toEqual({ "[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, a: 6, "": 5, constructor: 7 });
  });

  it("names a missing special token", () => {
    expect(() => vocabToMap(["[PAD]", "[UNK]", "[SEP]"])).toThrow(/missing the required special token \[CLS\]/);
  });
});
