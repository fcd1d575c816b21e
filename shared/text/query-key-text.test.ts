import { describe, expect, it } from "vitest";
import { BertTokenizer } from "../../gpu-worker/src/model/tokenizer/tokenizer.ts";
import { TEST_VOCAB } from "../../test/support/test-vocab.ts";
import { seededRandom } from "../random.ts";
import { queryKeyText } from "./query-key-text.ts";

const tokenizers = {
  uncased: BertTokenizer.fromVocab(TEST_VOCAB, { lowercase: true }),
  cased: BertTokenizer.fromVocab(TEST_VOCAB, { lowercase: false }),
};

// Characters where a cache key and the tokenizer could disagree: invisible format characters, every
// kind of blank, controls, CJK padding in and outside the BMP, decomposed accents.
const ALPHABET = [
  "a", "b", "c", "x", "i", " ", "  ", "\t", "\n", "\r", "\u00a0", "\u3000", "\u2003", "\u2028", "\u0085",
  "\ufeff", "\u200b", "\u0000", "\u0007", "\uffff", "\ud800", "\ufffd", "我", "爱", "\u{20000}", "e",
  "\u0301", "\u00e9", "!", ".", "'",
];

function randomQuery(random: () => number): string {
  const length = 1 + Math.floor(random() * 5);
  let text = "";
  for (let i = 0; i < length; i++) text += ALPHABET[Math.floor(random() * ALPHABET.length)];
  return text;
}

describe("queryKeyText (the result cache's query key)", () => {
  it("keeps apart what the model tells apart: U+FEFF is dropped, not a space", () => {
    expect(queryKeyText("ab\ufeffcd")).toBe("abcd");
    expect(queryKeyText("ab\ufeffcd")).not.toBe(queryKeyText("ab cd"));
    for (const tokenizer of Object.values(tokenizers)) {
      expect(tokenizer.tokenize("ab\ufeffcd", 64)).not.toEqual(tokenizer.tokenize("ab cd", 64));
      expect(tokenizer.tokenize("ab\ufeffcd", 64)).toEqual(tokenizer.tokenize("abcd", 64));
    }
  });

  it("merges what the model merges: whitespace runs, NFC, controls, CJK padding", () => {
    expect(queryKeyText("  a \t\n\u00a0 b  ")).toBe("a b");
    expect(queryKeyText("cafe\u0301")).toBe("caf\u00e9");
    expect(queryKeyText("a\u200b\u0000b")).toBe("ab");
    expect(queryKeyText("我爱")).toBe(queryKeyText("我 爱"));
  });

  it("equal keys imply equal token ids (random queries over tricky characters)", () => {
    const random = seededRandom(11);
    const byKey = new Map<string, string[]>();
    for (let i = 0; i < 4000; i++) {
      const query = randomQuery(random);
      const key = queryKeyText(query);
      byKey.set(key, [...(byKey.get(key) ?? []), query]);
    }
    let comparisons = 0;
    for (const [key, queries] of byKey) {
      for (const [name, tokenizer] of Object.entries(tokenizers)) {
        const expected = tokenizer.tokenize(queries[0]!, 64);
        for (const query of queries.slice(1)) {
          comparisons++;
          expect({ name, key, query, ids: tokenizer.tokenize(query, 64) }).toEqual({ name, key, query, ids: expected });
        }
      }
    }
    // The check is not vacuous: many different queries did share keys.
    expect(comparisons).toBeGreaterThan(1000);
  });
});
