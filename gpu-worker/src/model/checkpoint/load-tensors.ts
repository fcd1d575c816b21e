/**
 * Finds and reads the weights file of an HF-layout checkpoint directory:
 * `model.safetensors` if present (the safer format), else `pytorch_model.bin`.
 */
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { TensorMap } from "../types.ts";
import { parseSafetensors } from "./safetensors.ts";
import { parseTorchZip } from "./torch-zip.ts";

export const WEIGHT_FILES = ["model.safetensors", "pytorch_model.bin"] as const;
const SHARD_INDEXES = ["model.safetensors.index.json", "pytorch_model.bin.index.json"];

export interface SourceFile {
  name: string;
  bytes: number;
  sha256: string;
}

export async function loadTensorFile(dir: string): Promise<{ tensors: TensorMap; file: SourceFile }> {
  for (const name of WEIGHT_FILES) {
    const path = join(dir, name);
    if (!(await isFile(path))) continue;
    const bytes = await readFile(path);
    const tensors = name.endsWith(".safetensors") ? parseSafetensors(bytes, path).tensors : parseTorchZip(bytes, path);
    return { tensors, file: { name, bytes: bytes.byteLength, sha256: sha256(bytes) } };
  }
  for (const index of SHARD_INDEXES) {
    if (await isFile(join(dir, index))) {
      throw new Error(`${dir}: sharded checkpoints (${index}) are not supported; Hypencoder checkpoints are one file`);
    }
  }
  throw new Error(`${dir}: no weights file (expected ${WEIGHT_FILES.join(" or ")})`);
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}
