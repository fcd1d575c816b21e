import { readIdTextFile } from "../../io/jsonl.ts";
import { HypencoderRuntime } from "../../model/runtime/runtime.ts";
import { parse, positiveInt, required } from "../args.ts";
import { progressReporter } from "../progress.ts";
import { writeLine } from "../output.ts";

const USAGE = "hypencoder embed --model <model-dir> --docs <docs.jsonl> [--doc-max-length N]";

/** Prints {"id","embedding":[…]} per document. */
export async function embedCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, { model: { type: "string" }, docs: { type: "string" }, "doc-max-length": { type: "string" } }, USAGE);
  const modelDir = required(values, "model", USAGE);
  const docs = await readIdTextFile(required(values, "docs", USAGE));
  const maxLength = positiveInt(values, "doc-max-length");
  const runtime = await HypencoderRuntime.load(modelDir);
  try {
    const rows = await runtime.embedDocuments(
      docs.map((d) => d.text),
      { ...(maxLength ? { maxLength } : {}), onProgress: progressReporter("embedding documents") },
    );
    const dim = runtime.manifest.embeddingDim;
    for (const [i, doc] of docs.entries()) {
      await writeLine({ id: doc.id, embedding: Array.from(rows.subarray(i * dim, (i + 1) * dim)) });
    }
  } finally {
    await runtime.close();
  }
}
