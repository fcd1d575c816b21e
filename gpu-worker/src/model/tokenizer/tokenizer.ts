/**
 * BERT WordPiece tokenizer for query and document encoding, matching HF's slow Python
 * `BertTokenizer`. Tokenization itself is `@huggingface/tokenizers` driven by a
 * tokenizer.json (the model's own, or one generated from vocab.txt), with a thin
 * pre-step (`prepareBertText`) that corrects where the library deviates from Python.
 * [CLS]/[SEP] framing and truncation are done here so they cannot depend on whatever
 * post-processor a tokenizer.json declares.
 */
import { Tokenizer } from "@huggingface/tokenizers";
import { z } from "zod";
import { bertTokenizerJson, REQUIRED_SPECIAL_TOKENS } from "./bert-tokenizer-json.ts";
import { prepareBertText, type BertTextPrepOptions } from "../../../../shared/text/bert-text-prep.ts";
import { readTokenizerSource } from "./tokenizer-files.ts";

export { copyTokenizerFiles } from "./tokenizer-files.ts";

export const DEFAULT_QUERY_MAX_LENGTH = 64;
export const DEFAULT_DOC_MAX_LENGTH = 512;

export interface EncodedBatch {
  /** Row-major [batchSize, seqLen], padded with the [PAD] id. */
  inputIds: BigInt64Array;
  /** Row-major [batchSize, seqLen]: 1 for real tokens, 0 for padding. */
  attentionMask: BigInt64Array;
  batchSize: number;
  /** The longest row in this batch (not maxLength). */
  seqLen: number;
  /** Unpadded length of each row, [CLS] and [SEP] included. */
  lengths: number[];
}

/**
 * The parts of tokenizer.json whose semantics the pre-step and the framing rely on.
 * Anything else (e.g. a SentencePiece model) is not a BERT tokenizer and is refused
 * rather than silently tokenized with BERT rules. Defaults are the Rust crate's.
 */
const bertTokenizerJsonSchema = z.looseObject({
  normalizer: z.looseObject({
    type: z.literal("BertNormalizer"),
    clean_text: z.boolean().default(true),
    handle_chinese_chars: z.boolean().default(true),
    strip_accents: z.boolean().nullable().default(null),
    lowercase: z.boolean().default(true),
  }),
  pre_tokenizer: z.looseObject({ type: z.literal("BertPreTokenizer") }),
  model: z.looseObject({
    type: z.literal("WordPiece"),
    vocab: z.record(z.string(), z.number().int().nonnegative()),
    unk_token: z.string().default("[UNK]"),
    // The library would prefix continuation pieces with "undefined" if this were absent.
    continuing_subword_prefix: z.string().default("##"),
    max_input_chars_per_word: z.number().int().positive().default(100),
  }),
  added_tokens: z.array(z.looseObject({ id: z.number().int(), content: z.string() })).default([]),
  post_processor: z.unknown().default(null),
  decoder: z.unknown().default(null),
});

interface SpecialIds {
  cls: number;
  sep: number;
  pad: number;
}

function checkMaxLength(maxLength: number): void {
  if (!Number.isInteger(maxLength) || maxLength < 2) {
    throw new RangeError(`maxLength must be an integer >= 2 (room for [CLS] and [SEP]), got ${maxLength}`);
  }
}

export class BertTokenizer {
  /** One past the largest token id: the embedding rows the model must have. */
  readonly vocabSize: number;

  private constructor(
    private readonly tokenizer: Tokenizer,
    private readonly prep: BertTextPrepOptions,
    private readonly special: SpecialIds,
    vocabSize: number,
  ) {
    this.vocabSize = vocabSize;
  }

  /** From a model directory: tokenizer.json, else vocab.txt (+ tokenizer_config.json). */
  static async fromDirectory(dir: string): Promise<BertTokenizer> {
    const { json, path } = await readTokenizerSource(dir);
    return BertTokenizer.fromTokenizerJson(json, path);
  }

  /** From an in-memory vocabulary (line i = id i), as HF would build it from vocab.txt. */
  static fromVocab(vocab: readonly string[], options: { lowercase: boolean }): BertTokenizer {
    return BertTokenizer.fromTokenizerJson(bertTokenizerJson(vocab, options), "vocabulary");
  }

  /** From a parsed tokenizer.json object; `origin` names it in error messages. */
  static fromTokenizerJson(json: unknown, origin = "tokenizer.json"): BertTokenizer {
    const parsed = bertTokenizerJsonSchema.safeParse(json);
    if (!parsed.success) {
      throw new Error(`${origin}: not a BERT WordPiece tokenizer: ${z.prettifyError(parsed.error)}`);
    }
    const config = parsed.data;
    const tokenizer = new Tokenizer(config, {});
    const vocab = tokenizer.get_vocab(true);
    const idOf = (token: string): number => {
      const id = vocab.get(token);
      if (id === undefined) throw new Error(`${origin}: vocabulary is missing the special token ${token}`);
      return id;
    };
    REQUIRED_SPECIAL_TOKENS.forEach(idOf);
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    return new BertTokenizer(
      tokenizer,
      { cleanText: config.normalizer.clean_text, handleChineseChars: config.normalizer.handle_chinese_chars },
      { cls: idOf("[CLS]"), sep: idOf("[SEP]"), pad: idOf("[PAD]") },
      maxId + 1,
    );
  }

  /**
   * Token ids of `text` framed as [CLS] … [SEP]; word pieces beyond maxLength-2 are
   * dropped (HF `truncation=True, max_length=maxLength` for a single sequence).
   */
  tokenize(text: string, maxLength: number): number[] {
    checkMaxLength(maxLength);
    if (typeof text !== "string") throw new TypeError(`text must be a string, got ${typeof text}`);
    const prepared = prepareBertText(text, this.prep);
    const { ids } = this.tokenizer.encode(prepared, { add_special_tokens: false });
    return [this.special.cls, ...ids.slice(0, maxLength - 2), this.special.sep];
  }

  /** Tokenizes each text and pads the batch to its longest row. */
  encodeBatch(texts: readonly string[], maxLength: number): EncodedBatch {
    checkMaxLength(maxLength);
    // A [0, 0] tensor is not a valid model input; an empty batch is a caller bug.
    if (texts.length === 0) throw new RangeError("encodeBatch needs at least one text");
    const rows = texts.map((text) => this.tokenize(text, maxLength));
    const lengths = rows.map((row) => row.length);
    const seqLen = Math.max(...lengths);
    const inputIds = new BigInt64Array(rows.length * seqLen).fill(BigInt(this.special.pad));
    const attentionMask = new BigInt64Array(rows.length * seqLen);
    rows.forEach((row, r) => {
      const offset = r * seqLen;
      row.forEach((id, i) => {
        inputIds[offset + i] = BigInt(id);
        attentionMask[offset + i] = 1n;
      });
    });
    return { inputIds, attentionMask, batchSize: rows.length, seqLen, lengths };
  }
}
