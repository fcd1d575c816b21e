/**
 * Generates the `tokenizer.json` that HuggingFace `BertTokenizerFast` saves for a
 * plain BERT WordPiece vocabulary. Used when a model directory ships only
 * `vocab.txt` (so the vocab.txt path and the tokenizer.json path run through the
 * same library implementation) and by fixture generators that write tiny
 * checkpoints.
 */

/** The BERT special tokens, in the order HF registers them as added tokens (by id). */
export const BERT_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] as const;

/** Tokens every BERT encoding needs: unknown pieces, the [CLS]/[SEP] frame and batch padding. */
export const REQUIRED_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] as const;

export interface BertTokenizerJsonOptions {
  lowercase: boolean;
  /** HF semantics: null/undefined means "follow lowercase". */
  stripAccents?: boolean | null;
}

/**
 * Builds the token → id map exactly like HF `load_vocab`: the id is the line index, a
 * duplicated token keeps its last index (Python dict semantics) and empty lines still
 * occupy an id, so ids stay aligned with the checkpoint's embedding rows.
 */
export function vocabToMap(vocab: readonly string[]): Record<string, number> {
  // Null prototype so tokens such as "constructor" or "__proto__" are plain keys.
  const map: Record<string, number> = Object.create(null) as Record<string, number>;
  vocab.forEach((token, id) => {
    map[token] = id;
  });
  for (const special of REQUIRED_SPECIAL_TOKENS) {
    if (!(special in map)) {
      throw new Error(`BERT vocab (${vocab.length} tokens) is missing the required special token ${special}`);
    }
  }
  return map;
}

/**
 * The tokenizer.json HF `BertTokenizerFast.save_pretrained` writes for `vocab`
 * (truncation/padding off; special tokens added by the [CLS] $A [SEP] template).
 */
export function bertTokenizerJson(vocab: readonly string[], options: BertTokenizerJsonOptions): Record<string, unknown> {
  const map = vocabToMap(vocab);
  const cls = map["[CLS]"];
  const sep = map["[SEP]"];
  // HF registers the special tokens as added tokens (matched on the raw text, before
  // normalization); [MASK] is optional in tiny vocabularies.
  const addedTokens = BERT_SPECIAL_TOKENS.filter((t) => t in map)
    .map((t) => ({
      id: map[t],
      content: t,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    }))
    .sort((a, b) => a.id - b.id);

  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: {
      type: "BertNormalizer",
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: options.stripAccents ?? null,
      lowercase: options.lowercase,
    },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } },
        { SpecialToken: { id: "[SEP]", type_id: 1 } },
      ],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [cls], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [sep], tokens: ["[SEP]"] },
      },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: {
      type: "WordPiece",
      unk_token: "[UNK]",
      continuing_subword_prefix: "##",
      max_input_chars_per_word: 100,
      vocab: map,
    },
  };
}
