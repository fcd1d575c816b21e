/**
 * Writes `models/debian-mini/eval-subset.json` (test/support/eval-subset.ts): picks the subset's
 * packages (seeded) and records the figures the checkpoint in that folder scores on it.
 *
 *   node bin/run-ts.mjs bench/relevance/make-eval-subset.ts [--checkpoint models/debian-mini]
 *     [--queries 100] [--distractors 500] [--seed 2026]
 *
 * Rerun it whenever the checkpoint changes, and copy the figures into the model card.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { hasLongDescription, readDebianCorpus } from "../../infra/dev/corpus/debian-corpus.ts";
import { importCheckpoint } from "../../gpu-worker/src/model/import-checkpoint.ts";
import { seededRandom } from "../../gpu-worker/src/search/random.ts";
import { evaluateSubset, type EvalSubset } from "../../test/support/eval-subset.ts";

const { values: args } = parseArgs({
  options: {
    checkpoint: { type: "string", default: "models/debian-mini" },
    queries: { type: "string", default: "100" },
    distractors: { type: "string", default: "500" },
    seed: { type: "string", default: "2026" },
  },
});

function sample<T>(items: T[], count: number, rand: () => number): T[] {
  const pool = [...items];
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, count);
}

const corpus = await readDebianCorpus();
const rand = seededRandom(Number(args.seed));
const queries = sample(corpus.filter((d) => d.metadata.split === "test" && hasLongDescription(d)), Number(args.queries), rand).map((d) => d.id);
const taken = new Set(queries);
const distractors = sample(corpus.filter((d) => !taken.has(d.id)), Number(args.distractors), rand).map((d) => d.id);

const modelDir = await mkdtemp(join(tmpdir(), "eval-subset-"));
try {
  await importCheckpoint(args.checkpoint, join(modelDir, "model"));
  const metrics = await evaluateSubset(join(modelDir, "model"), { queries, distractors });
  const subset: EvalSubset = {
    about:
      `Known-item subset for the model-card test (test/model-card.test.ts): ${queries.length} test-split synopses as queries, ` +
      `${queries.length + distractors.length} documents (each the package's long description without its synopsis), every document scored ` +
      `by the Hypencoder through the TypeScript path. Written by bench/relevance/make-eval-subset.ts --seed ${args.seed}.`,
    queries,
    distractors,
    metrics: { "MRR@10": round(metrics["MRR@10"]), "R@10": round(metrics["R@10"]) },
    tolerance: 0.005,
  };
  const out = join(args.checkpoint, "eval-subset.json");
  await writeFile(out, `${JSON.stringify(subset, null, 1)}\n`);
  console.log(`wrote ${out}: MRR@10 ${subset.metrics["MRR@10"].toFixed(3)}, R@10 ${subset.metrics["R@10"].toFixed(3)}`);
} finally {
  await rm(modelDir, { recursive: true, force: true });
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
