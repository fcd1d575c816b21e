/**
 * The committed demo model (models/debian-mini) still scores what its model card records, on the
 * card's small fixed evaluation subset (eval-subset.json beside it), through the TypeScript serving
 * path: `hypencoder import` with no flag, then tokenizer, ONNX encoders and q-net scorer on
 * onnxruntime. A retrained or re-exported checkpoint must come with new figures
 * (bench/relevance/make-eval-subset.ts) in both eval-subset.json and the card.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_CHECKPOINT } from "../infra/dev/demo-model.ts";
import { importCheckpoint } from "../gpu-worker/src/model/import-checkpoint.ts";
import { type EvalSubset, evaluateSubset, readEvalSubset } from "./support/eval-subset.ts";

let dir: string;
let subset: EvalSubset;

beforeAll(async () => {
  subset = await readEvalSubset(join(DEMO_CHECKPOINT, "eval-subset.json"));
  dir = await mkdtemp(join(tmpdir(), "model-card-"));
  await importCheckpoint(DEMO_CHECKPOINT, join(dir, "model"));
}, 300_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("models/debian-mini", () => {
  it("its model card states the subset's recorded figures", async () => {
    const card = await readFile(join(DEMO_CHECKPOINT, "README.md"), "utf8");
    expect(card).toContain("eval-subset.json");
    for (const [name, value] of Object.entries(subset.metrics)) expect(card).toContain(`${name} ${value.toFixed(3)}`);
  });

  it("reproduces them on the subset through the TypeScript path", async () => {
    const measured = await evaluateSubset(join(dir, "model"), subset);
    for (const [name, value] of Object.entries(subset.metrics)) {
      expect(Math.abs(measured[name as keyof typeof measured] - value), `${name}: measured ${measured[name as keyof typeof measured]}, recorded ${value}`).toBeLessThanOrEqual(subset.tolerance);
    }
  }, 300_000);
});
