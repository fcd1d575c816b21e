/**
 * Finds and reads the tokenizer files of a model directory, producing the one
 * tokenizer.json object that `BertTokenizer` feeds to `@huggingface/tokenizers`:
 * the directory's own tokenizer.json when present, otherwise one generated from
 * vocab.txt (+ tokenizer_config.json) by `bertTokenizerJson`.
 */
import { copyFile, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { bertTokenizerJson } from "./bert-tokenizer-json.ts";

export const TOKENIZER_JSON = "tokenizer.json";
export const VOCAB_TXT = "vocab.txt";
export const TOKENIZER_CONFIG_JSON = "tokenizer_config.json";
export const SPECIAL_TOKENS_MAP_JSON = "special_tokens_map.json";

/** Every file a HF BERT tokenizer may consist of, in the order they are copied. */
export const TOKENIZER_FILE_NAMES = [TOKENIZER_JSON, VOCAB_TXT, TOKENIZER_CONFIG_JSON, SPECIAL_TOKENS_MAP_JSON] as const;

/** The tokenizer_config.json keys that change BERT normalization (others are ignored). */
const tokenizerConfigSchema = z.looseObject({
  do_lower_case: z.boolean().optional(),
  strip_accents: z.boolean().nullable().optional(),
});
export type BertTokenizerConfig = z.infer<typeof tokenizerConfigSchema>;

export interface TokenizerSource {
  /** A parsed (or generated) tokenizer.json object. */
  json: Record<string, unknown>;
  /** The file the vocabulary came from, for error messages. */
  path: string;
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === "ENOENT";
}

/** Reads a UTF-8 file, or returns null when it does not exist (other errors propagate). */
async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

function parseJsonFile(path: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`${path}: invalid JSON (${(err as Error).message})`);
  }
}

async function readTokenizerConfig(dir: string): Promise<BertTokenizerConfig> {
  const path = join(dir, TOKENIZER_CONFIG_JSON);
  const text = await readOptional(path);
  if (text === null) return {};
  const parsed = tokenizerConfigSchema.safeParse(parseJsonFile(path, text));
  if (!parsed.success) throw new Error(`${path}: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/**
 * Splits vocab.txt like HF `load_vocab` (`readlines()` + `rstrip("\n")`): one token per
 * line, id = line index, a trailing newline does not add a token.
 */
export function parseVocabTxt(text: string, path = VOCAB_TXT): string[] {
  // HF keeps "\r" as part of every token, which silently ruins tokenization; refuse it.
  if (text.includes("\r")) throw new Error(`${path}: CRLF line endings are not supported (convert to LF)`);
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (lines.length === 0) throw new Error(`${path}: empty vocabulary`);
  return lines;
}

/**
 * `BertTokenizerFast` overrides the saved normalizer with explicit tokenizer_config.json
 * settings; mirror that for the two options that matter so both files can't disagree.
 */
function applyConfigOverrides(json: Record<string, unknown>, config: BertTokenizerConfig): Record<string, unknown> {
  const normalizer = json.normalizer as Record<string, unknown> | null | undefined;
  if (normalizer?.type !== "BertNormalizer") return json;
  const next = { ...normalizer };
  if (config.do_lower_case !== undefined) next.lowercase = config.do_lower_case;
  if (config.strip_accents !== undefined) next.strip_accents = config.strip_accents;
  return { ...json, normalizer: next };
}

/**
 * Loads the tokenizer of a model directory: tokenizer.json if it exists, otherwise
 * vocab.txt (+ tokenizer_config.json, defaults as HF `BertTokenizer`: lowercase, accents
 * follow lowercase).
 */
export async function readTokenizerSource(dir: string): Promise<TokenizerSource> {
  const config = await readTokenizerConfig(dir);
  const jsonPath = join(dir, TOKENIZER_JSON);
  const jsonText = await readOptional(jsonPath);
  if (jsonText !== null) {
    const json = parseJsonFile(jsonPath, jsonText);
    if (json === null || typeof json !== "object" || Array.isArray(json)) {
      throw new Error(`${jsonPath}: expected a JSON object`);
    }
    return { json: applyConfigOverrides(json as Record<string, unknown>, config), path: jsonPath };
  }
  const vocabPath = join(dir, VOCAB_TXT);
  const vocabText = await readOptional(vocabPath);
  if (vocabText === null) {
    throw new Error(`No tokenizer in ${dir}: expected ${TOKENIZER_JSON} or ${VOCAB_TXT}`);
  }
  const vocab = parseVocabTxt(vocabText, vocabPath);
  const json = bertTokenizerJson(vocab, {
    lowercase: config.do_lower_case ?? true,
    stripAccents: config.strip_accents ?? null,
  });
  return { json, path: vocabPath };
}

/**
 * Copies whichever tokenizer files exist from `srcDir` into `destDir` (created if
 * needed) and returns the copied file names. Fails when there is neither
 * tokenizer.json nor vocab.txt, since the result could not be loaded.
 */
export async function copyTokenizerFiles(srcDir: string, destDir: string): Promise<string[]> {
  await mkdir(destDir, { recursive: true });
  const copied: string[] = [];
  for (const name of TOKENIZER_FILE_NAMES) {
    try {
      await copyFile(join(srcDir, name), join(destDir, name));
      copied.push(name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  if (!copied.includes(TOKENIZER_JSON) && !copied.includes(VOCAB_TXT)) {
    throw new Error(`No tokenizer in ${srcDir}: expected ${TOKENIZER_JSON} or ${VOCAB_TXT}`);
  }
  return copied;
}
