/**
 * The model card's evaluation subset (`models/debian-mini/eval-subset.json`): a small, fixed
 * known-item task that the TypeScript serving path can rerun in seconds, so a test can check that
 * the committed model still scores what its card records. `bench/relevance/make-eval-subset.ts`
 * picks the packages and records the figures; the full benchmark is `npm run bench -- relevance`.
 *
 * Queries are synopses of test-split packages; the collection is those packages plus distractors,
 * each as its long description without the synopsis (as in the benchmark); every document is scored
 * with the Hypencoder's q-net (exhaustive, float32 embeddings).
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { descriptionOnly, readDebianCorpus } from "../../infra/dev/corpus/debian-corpus.ts";
import { HypencoderRuntime } from "../../gpu-worker/src/model/runtime/runtime.ts";
import { mean, recallAt, reciprocalRank, topIds } from "./relevance-metrics.ts";

export const evalSubsetSchema = z.object({
  about: z.string(),
  /** Query packages: each one's synopsis is a query, the package its one relevant document. */
  queries: z.array(z.string()).min(1),
  /** The other documents of the collection. */
  distractors: z.array(z.string()),
  /** The figures recorded for the committed model, and how far a rerun may differ. */
  metrics: z.object({ "MRR@10": z.number(), "R@10": z.number() }),
  tolerance: z.number().positive(),
});
export type EvalSubset = z.infer<typeof evalSubsetSchema>;
export type EvalMetrics = EvalSubset["metrics"];

export async function readEvalSubset(path: string): Promise<EvalSubset> {
  return evalSubsetSchema.parse(JSON.parse(await readFile(path, "utf8")));
}

/** Reruns the subset with an imported model directory. */
export async function evaluateSubset(modelDir: string, subset: Pick<EvalSubset, "queries" | "distractors">): Promise<EvalMetrics> {
  const byId = new Map((await readDebianCorpus()).map((d) => [d.id, d]));
  const get = (id: string) => {
    const doc = byId.get(id);
    if (!doc) throw new Error(`eval subset: package ${id} is not in the corpus`);
    return doc;
  };
  const collection = [...subset.queries, ...subset.distractors].map(get);
  const ids = collection.map((d) => d.id);
  const runtime = await HypencoderRuntime.load(modelDir);
  try {
    const embeddings = await runtime.embedDocuments(collection.map(descriptionOnly));
    const qnets = await runtime.encodeQueries(subset.queries.map((id) => get(id).title));
    const rr: number[] = [];
    const r10: number[] = [];
    for (const [q, qnet] of qnets.entries()) {
      const ranking = topIds(await runtime.score(qnet, embeddings), ids, 10);
      const relevant = new Set([subset.queries[q]!]);
      rr.push(reciprocalRank(ranking, relevant, 10));
      r10.push(recallAt(ranking, relevant, 10));
    }
    return { "MRR@10": mean(rr), "R@10": mean(r10) };
  } finally {
    await runtime.close();
  }
}
