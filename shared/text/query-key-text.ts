/**
 * The text a query is cached under: the tokenizer's own cleaning (`prepareBertText`, the same code
 * the worker runs before WordPiece), then only what BERT's whitespace split makes invisible — runs
 * of spaces become one, and leading and trailing spaces go. So two queries share a cache key only if
 * the model sees them as one (an invisible U+FEFF is dropped, as the model drops it; it does not
 * become a space).
 *
 * It assumes the BERT defaults `clean_text` and `handle_chinese_chars` (those of the Hypencoder
 * checkpoints). It never lowercases or strips accents, even though an uncased model would: a
 * narrower key only costs a cache miss, a wider one would answer a query with another's hits.
 */
import { prepareBertText } from "./bert-text-prep.ts";

const BERT_DEFAULTS = { cleanText: true, handleChineseChars: true } as const;

export function queryKeyText(query: string): string {
  // After cleaning, every BERT whitespace character is a plain space.
  return prepareBertText(query, BERT_DEFAULTS).replace(/ {2,}/g, " ").replace(/^ | $/g, "");
}
