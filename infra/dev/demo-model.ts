/**
 * The models the local stack runs.
 * - The demo model: the trained Debian Hypencoder committed in `models/debian-mini` (its model card
 *   says how it was trained), imported into `.dev/`. It ranks the demo corpus for real.
 * - The tiny random test checkpoint: random scores (see README), generated with no download. The
 *   tests use it (they check machinery, not relevance), and the dev stack falls back to it when no
 *   trained checkpoint is there.
 */
import { createHash } from "node:crypto";
import { access, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { writeTinyCheckpoint } from "../../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../../gpu-worker/src/model/import-checkpoint.ts";
import { MODEL_MANIFEST_FILE, type ModelManifest, readModelManifest } from "../../gpu-worker/src/model/model-manifest.ts";

/** The trained demo checkpoint (HF layout), committed in the repository. */
export const DEMO_CHECKPOINT = resolve(import.meta.dirname, "../../models/debian-mini");

export interface DemoModel {
  dir: string;
  manifest: ModelManifest;
  /** false: the tiny random checkpoint (no trained checkpoint found). */
  trained: boolean;
  /** The checkpoint directory imported (trained models only). */
  checkpoint?: string;
}

const exists = (path: string) => access(path).then(() => true, () => false);

/** The tiny random checkpoint, imported into `<devDir>/model` once. */
export async function ensureTinyModel(devDir: string, log: (message: string) => void): Promise<string> {
  const modelDir = join(devDir, "model");
  if (await exists(join(modelDir, MODEL_MANIFEST_FILE))) return modelDir;
  const checkpointDir = join(devDir, "tiny-checkpoint");
  log("generating the tiny random demo checkpoint");
  await writeTinyCheckpoint(checkpointDir, { seed: 2025 });
  await importCheckpoint(checkpointDir, modelDir, { force: true, onProgress: log });
  return modelDir;
}

/**
 * The dev stack's model: `checkpoint` (default models/debian-mini; `npm run dev` takes another from
 * HYPENCODER_DEV_CHECKPOINT) imported into
 * `<devDir>/trained-model`, re-imported whenever the checkpoint's files change (the manifest records
 * their sha256), or the tiny random checkpoint when there is no trained one.
 */
export async function ensureDemoModel(devDir: string, log: (message: string) => void, checkpoint = DEMO_CHECKPOINT): Promise<DemoModel> {
  if (!(await exists(join(checkpoint, "config.json")))) {
    log(`no trained checkpoint in ${checkpoint}: using the tiny random test checkpoint (random scores)`);
    const dir = await ensureTinyModel(devDir, log);
    return { dir, manifest: await readModelManifest(dir), trained: false };
  }
  const dir = join(devDir, "trained-model");
  if (await exists(join(dir, MODEL_MANIFEST_FILE))) {
    const manifest = await readModelManifest(dir);
    if (await sameSourceFiles(checkpoint, manifest)) return { dir, manifest, trained: true, checkpoint };
    log(`${checkpoint} changed since it was imported: importing it again`);
  }
  log(`importing ${checkpoint}`);
  const manifest = await importCheckpoint(checkpoint, dir, { force: true, onProgress: log });
  return { dir, manifest, trained: true, checkpoint };
}

/** Whether the checkpoint's config and weights are byte for byte the ones the model was imported from. */
async function sameSourceFiles(checkpoint: string, manifest: ModelManifest): Promise<boolean> {
  for (const file of manifest.source.files) {
    const bytes = await readFile(join(checkpoint, file.name)).catch(() => undefined);
    if (!bytes || createHash("sha256").update(bytes).digest("hex") !== file.sha256) return false;
  }
  return manifest.source.files.length > 0;
}
