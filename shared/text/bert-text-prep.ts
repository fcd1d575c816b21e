/**
 * Pre-normalization step that makes `@huggingface/tokenizers`' BertNormalizer match the
 * slow Python `BasicTokenizer` exactly. The library gets three things wrong or omits
 * them, and all three must happen *before* its normalizer runs, in Python's order:
 *
 *  1. Control characters: Python drops every Unicode category C* (Cc, Cf, Cs, Co, Cn)
 *     except \t \n \r. The library's class is `Cc|Cf|Co|Cs` and misses Cn (unassigned
 *     code points and noncharacters such as U+FFFF, U+FDD0).
 *  2. CJK padding: the library scans UTF-16 code units, so ideographs outside the BMP
 *     (U+20000–U+2FA1F, encoded as surrogate pairs) are never padded with spaces.
 *  3. NFC: Python NFC-composes the text after CJK padding (transformers ≥ 4.30
 *     `BasicTokenizer.tokenize`); the library does not. This is a no-op when accents are
 *     stripped (NFD follows) but matters for cased vocabularies.
 *
 * Everything after this (lowercase, NFD + drop Mn, whitespace/punctuation split,
 * WordPiece) is left to the library. Its own clean/CJK passes then find nothing to do
 * (at most they add harmless extra spaces).
 */

export interface BertTextPrepOptions {
  /** BertNormalizer.clean_text */
  cleanText: boolean;
  /** BertNormalizer.handle_chinese_chars */
  handleChineseChars: boolean;
}

/** The CJK Unified Ideograph blocks HF's `_is_chinese_char` lists (not Hangul/kana). */
const CJK_RANGES: ReadonlyArray<readonly [number, number]> = [
  [0x4e00, 0x9fff],
  [0x3400, 0x4dbf],
  [0x20000, 0x2a6df],
  [0x2a700, 0x2b73f],
  [0x2b740, 0x2b81f],
  [0x2b820, 0x2ceaf],
  [0xf900, 0xfaff],
  [0x2f800, 0x2fa1f],
];

export function isCjkIdeograph(cp: number): boolean {
  return CJK_RANGES.some(([lo, hi]) => cp >= lo && cp <= hi);
}

// Python `_is_control`: category starts with "C". \p{C} is exactly Cc|Cf|Cs|Co|Cn.
const OTHER_CATEGORY = /^\p{C}$/u;
// Python `_is_whitespace`: the four ASCII blanks plus category Zs.
const BERT_WHITESPACE = /^(?:[ \t\n\r]|\p{Zs})$/u;

export function prepareBertText(text: string, options: BertTextPrepOptions): string {
  let out = "";
  // for..of walks code points, so surrogate pairs are seen as one character.
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (options.cleanText) {
      if (BERT_WHITESPACE.test(ch)) {
        out += " ";
        continue;
      }
      // Covers NUL and lone surrogates too; U+FFFD is So, so it is listed explicitly.
      if (cp === 0xfffd || OTHER_CATEGORY.test(ch)) continue;
    }
    out += options.handleChineseChars && isCjkIdeograph(cp) ? ` ${ch} ` : ch;
  }
  return out.normalize("NFC");
}
