/**
 * Tiny handcrafted BERT vocabulary shared by the tokenizer tests. Expected ids in the
 * tests are written as token strings (hand-derived from HF's rules) and mapped to ids
 * through this list, independently of the library under test.
 */
export const TEST_VOCAB: readonly string[] = [
  "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
  "cafe", "naive", "angstrom", "hello", ",", "world", "!", "don", "'", "t",
  "u", ".", "s", "a", "b", "c", "##b", "##c", "i",
  "我", "爱", "北", "京", "天", "安", "门", "\u{20000}",
  "❤", "🍕", "##🍕",
  "un", "##aff", "##able", "x", "##x",
  "é", // precomposed U+00E9: reachable only by a cased tokenizer after NFC
];

/** Maps hand-derived tokens to ids; throws on a typo so a test can't pass vacuously. */
export function idsOf(...tokens: string[]): number[] {
  return tokens.map((token) => {
    const id = TEST_VOCAB.indexOf(token);
    if (id < 0) throw new Error(`test vocab has no token ${JSON.stringify(token)}`);
    return id;
  });
}
