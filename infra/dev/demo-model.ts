/**
 * The dev stack's default model: the tiny random test checkpoint, imported into `.dev/model`.
 * Its scores are random (see README); it exists so the stack runs with no download.
 */
import { access } from "node:fs/promises";
import { join } from "node:path";
import { writeTinyCheckpoint } from "../../gpu-worker/src/model/fixture/tiny-checkpoint.ts";
import { importCheckpoint } from "../../gpu-worker/src/model/import-checkpoint.ts";
import { MODEL_MANIFEST_FILE } from "../../gpu-worker/src/model/model-manifest.ts";

export async function ensureDemoModel(devDir: string, log: (message: string) => void): Promise<string> {
  const modelDir = join(devDir, "model");
  const ready = await access(join(modelDir, MODEL_MANIFEST_FILE)).then(
    () => true,
    () => false,
  );
  if (ready) return modelDir;
  const checkpointDir = join(devDir, "tiny-checkpoint");
  log("generating the tiny random demo checkpoint");
  await writeTinyCheckpoint(checkpointDir, { seed: 2025 });
  await importCheckpoint(checkpointDir, modelDir, { force: true, onProgress: log });
  return modelDir;
}
