import { describe, expect, it } from "vitest";
import { BertTokenizer, DEFAULT_DOC_MAX_LENGTH, DEFAULT_QUERY_MAX_LENGTH } from "./tokenizer.ts";
import { idsOf, TEST_VOCAB } from "../../../../test/support/test-vocab.ts";

const uncased = BertTokenizer.fromVocab(TEST_VOCAB, { lowercase: true });
const cased = BertTokenizer.fromVocab(TEST_VOCAB, { lowercase: false });

/** Expected ids of an untruncated text: the hand-derived pieces framed by [CLS] … [SEP]. */
const framed = (...tokens: string[]) => idsOf("[CLS]", ...tokens, "[SEP]");

describe("BertTokenizer (uncased) matches HF BertTokenizer", () => {
  const cases: Array<[name: string, text: string, tokens: string[]]> = [
    ["lowercases and strips accents", "Café naïve Ångström", ["cafe", "naive", "angstrom"]],
    ["combining accents (already NFD)", "Cafe\u0301", ["cafe"]],
    ["splits every punctuation char", "hello,world!!", ["hello", ",", "world", "!", "!"]],
    ["apostrophe", "don't", ["don", "'", "t"]],
    ["dotted abbreviation", "U.S.A.", ["u", ".", "s", ".", "a", "."]],
    ["CJK ideographs become words", "我爱北京 天安门", ["我", "爱", "北", "京", "天", "安", "门"]],
    ["CJK glued to Latin", "hello我爱world", ["hello", "我", "爱", "world"]],
    ["supplementary-plane CJK (surrogate pair)", "a\u{20000}b", ["a", "\u{20000}", "b"]],
    ["drops NUL, Cc and Cf (U+200B)", "\u0000a\u0007b\u200bc", ["a", "##b", "##c"]],
    ["drops unassigned Cn (U+0378) and noncharacters (U+FFFF)", "a\u0378b a\uffffb", ["a", "##b", "a", "##b"]],
    ["drops U+FFFD", "a\ufffdb", ["a", "##b"]],
    ["tab/newline/CR and Zs are separators", "a\tb\nc\r\na\u00a0b\u3000c", ["a", "b", "c", "a", "b", "c"]],
    ["line/paragraph separators split words", "a\u2028b\u2029c", ["a", "b", "c"]],
    ["emoji stay words; U+FE0F (Mn) is stripped", "I ❤️ 🍕", ["i", "❤", "🍕"]],
    ["emoji glued to a word stay in it", "I❤️🍕", ["[UNK]"]],
    ["greedy longest-match WordPiece", "unaffable", ["un", "##aff", "##able"]],
    ["unmatchable word is a single [UNK]", "unaffablez hello", ["[UNK]", "hello"]],
    ["special tokens in the text are kept", "hello [MASK]", ["hello", "[MASK]"]],
    ["empty text", "", []],
    ["whitespace-only text", " \t\n ", []],
  ];
  it.each(cases)("%s", (_name, text, tokens) => {
    expect(uncased.tokenize(text, 512)).toEqual(framed(...tokens));
  });

  it("turns a word over 100 characters into one [UNK]", () => {
    expect(uncased.tokenize("x".repeat(101), 512)).toEqual(framed("[UNK]"));
    expect(uncased.tokenize(`hello ${"x".repeat(101)} hello`, 512)).toEqual(framed("hello", "[UNK]", "hello"));
  });

  it("splits a word of exactly 100 characters into word pieces", () => {
    expect(uncased.tokenize("x".repeat(100), 512)).toEqual(framed("x", ...Array<string>(99).fill("##x")));
  });

  it("counts the 100-character limit in code points, not UTF-16 units", () => {
    // 99 + 1 astral = 100 code points (101 UTF-16 units): still word pieces.
    const word = `${"x".repeat(99)}🍕`;
    expect(uncased.tokenize(word, 512)).toEqual(framed("x", ...Array<string>(98).fill("##x"), "##🍕"));
  });
});

describe("BertTokenizer (cased)", () => {
  it("keeps case and accents", () => {
    expect(cased.tokenize("Hello hello", 16)).toEqual(framed("[UNK]", "hello"));
  });

  it("NFC-composes before WordPiece, like BasicTokenizer", () => {
    expect(cased.tokenize("e\u0301", 16)).toEqual(framed("é"));
    expect(uncased.tokenize("\u00e9", 16)).toEqual(idsOf("[CLS]", "[UNK]", "[SEP]"));
  });
});

describe("truncation", () => {
  it("keeps the first maxLength-2 word pieces then [SEP]", () => {
    const text = "hello world hello world hello world hello";
    expect(uncased.tokenize(text, 8)).toEqual(framed("hello", "world", "hello", "world", "hello", "world"));
    expect(uncased.tokenize("unaffable", 4)).toEqual(framed("un", "##aff"));
    expect(uncased.tokenize("hello", 2)).toEqual(framed());
  });

  it("does not pad a short text", () => {
    expect(uncased.tokenize("hello", 8)).toEqual(framed("hello"));
  });

  it.each([1, 0, -3, 2.5, Number.NaN, Number.POSITIVE_INFINITY])("rejects maxLength %s", (maxLength) => {
    expect(() => uncased.tokenize("hello", maxLength)).toThrow(RangeError);
    expect(() => uncased.encodeBatch(["hello"], maxLength)).toThrow(RangeError);
  });
});

describe("encodeBatch", () => {
  it("pads to the longest row with [PAD] and masks the padding", () => {
    const batch = uncased.encodeBatch(["hello", "hello world!", ""], 8);
    const [pad, cls, sep, hello, world, bang] = idsOf("[PAD]", "[CLS]", "[SEP]", "hello", "world", "!");
    expect(batch.batchSize).toBe(3);
    expect(batch.seqLen).toBe(5);
    expect(batch.lengths).toEqual([3, 5, 2]);
    expect(Array.from(batch.inputIds, Number)).toEqual([
      cls, hello, sep, pad, pad,
      cls, hello, world, bang, sep,
      cls, sep, pad, pad, pad,
    ]);
    expect(Array.from(batch.attentionMask, Number)).toEqual([1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
  });

  it("truncates every row to maxLength", () => {
    const batch = uncased.encodeBatch(["hello world hello world", "hello"], 4);
    expect(batch.seqLen).toBe(4);
    expect(batch.lengths).toEqual([4, 3]);
  });

  it("rejects an empty batch", () => {
    expect(() => uncased.encodeBatch([], 8)).toThrow(RangeError);
  });
});

describe("construction", () => {
  it("reports the vocabulary size", () => {
    expect(uncased.vocabSize).toBe(TEST_VOCAB.length);
  });

  it("refuses a vocabulary without the required special tokens", () => {
    expect(() => BertTokenizer.fromVocab(["[UNK]", "[CLS]", "[SEP]", "a"], { lowercase: true })).toThrow(/\[PAD\]/);
  });

  it("refuses a tokenizer.json that is not BERT WordPiece", () => {
    expect(() => BertTokenizer.fromTokenizerJson({ model: { type: "BPE" } }, "x/tokenizer.json")).toThrow(
      /x\/tokenizer\.json: not a BERT WordPiece tokenizer/,
    );
  });

  it("exports the default lengths", () => {
    expect([DEFAULT_QUERY_MAX_LENGTH, DEFAULT_DOC_MAX_LENGTH]).toEqual([64, 512]);
  });
});
