import { readIdTextFile } from "../../io/jsonl.ts";
import { HypencoderRuntime } from "../../model/runtime/runtime.ts";
import { parse, positiveInt, required } from "../args.ts";
import { progressReporter } from "../progress.ts";
import { writeLine } from "../output.ts";

const USAGE =
  "hypencoder score --model <model-dir> --queries <q.jsonl> --docs <d.jsonl> [--query-max-length N] [--doc-max-length N]";

/** Prints {"query_id","doc_id","score"} for every (query, document) pair, queries in file order. */
export async function scoreCommand(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      model: { type: "string" },
      queries: { type: "string" },
      docs: { type: "string" },
      "query-max-length": { type: "string" },
      "doc-max-length": { type: "string" },
    },
    USAGE,
  );
  const modelDir = required(values, "model", USAGE);
  const queries = await readIdTextFile(required(values, "queries", USAGE));
  const docs = await readIdTextFile(required(values, "docs", USAGE));
  const queryMaxLength = positiveInt(values, "query-max-length");
  const docMaxLength = positiveInt(values, "doc-max-length");
  const runtime = await HypencoderRuntime.load(modelDir);
  try {
    const embeddings = await runtime.embedDocuments(
      docs.map((d) => d.text),
      { ...(docMaxLength ? { maxLength: docMaxLength } : {}), onProgress: progressReporter("embedding documents") },
    );
    const qnets = await runtime.encodeQueries(
      queries.map((q) => q.text),
      { ...(queryMaxLength ? { maxLength: queryMaxLength } : {}), onProgress: progressReporter("encoding queries") },
    );
    for (const [q, query] of queries.entries()) {
      const scores = await runtime.score(qnets[q]!, embeddings);
      for (const [d, doc] of docs.entries()) await writeLine({ query_id: query.id, doc_id: doc.id, score: scores[d] });
    }
  } finally {
    await runtime.close();
  }
}
