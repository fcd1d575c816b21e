/**
 * Line-by-line JSONL input (optionally gzip-compressed), validated with a zod schema.
 * Every error names the file and line, so a user can fix line 40,213 of a 2 GB file.
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { createGunzip } from "node:zlib";
import type { Readable } from "node:stream";
import { z } from "zod";

export class InputError extends Error {
  override name = "InputError";
}

/** `{"id", "text"}` lines: the CLI's query and document input. */
export const idTextLine = z.object({
  id: z.union([z.string().min(1), z.number().int()]),
  text: z.string(),
});
export type IdTextLine = z.infer<typeof idTextLine>;

export interface JsonlLine<T> {
  value: T;
  /** 1-based line number in the file. */
  line: number;
}

/** Yields each non-blank line parsed and validated; throws InputError naming the line otherwise. */
export async function* readJsonl<T>(path: string, schema: z.ZodType<T>): AsyncGenerator<JsonlLine<T>> {
  let line = 0;
  for await (const raw of createInterface({ input: openMaybeGzip(path), crlfDelay: Infinity })) {
    line++;
    if (raw.trim() === "") continue;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (error) {
      throw new InputError(`${path}:${line}: invalid JSON (${(error as Error).message})`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const where = issue.path.length > 0 ? `field "${issue.path.join(".")}": ` : "";
      throw new InputError(`${path}:${line}: ${where}${issue.message}`);
    }
    yield { value: parsed.data, line };
  }
}

/** Reads a whole `{"id","text"}` file, refusing duplicate ids. */
export async function readIdTextFile(path: string): Promise<IdTextLine[]> {
  const rows: IdTextLine[] = [];
  const firstLine = new Map<string, number>();
  for await (const { value, line } of readJsonl(path, idTextLine)) {
    const key = String(value.id);
    const earlier = firstLine.get(key);
    if (earlier !== undefined) throw new InputError(`${path}:${line}: duplicate id ${JSON.stringify(value.id)} (first on line ${earlier})`);
    firstLine.set(key, line);
    rows.push(value);
  }
  return rows;
}

function openMaybeGzip(path: string): Readable {
  const stream = createReadStream(path);
  if (!path.endsWith(".gz")) return stream;
  const gunzip = createGunzip();
  stream.on("error", (error) => gunzip.destroy(error));
  return stream.pipe(gunzip);
}
