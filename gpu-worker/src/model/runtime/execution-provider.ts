/**
 * Creates onnxruntime sessions on the best available device.
 *
 * onnxruntime-node does not fall back on its own: `executionProviders: ['cuda', 'cpu']` throws
 * when the CUDA provider cannot load. So "auto" tries CUDA alone, then the CPU.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-node";
import type { Device } from "./tensor-message.ts";

/**
 * The CUDA provider library sits beside the binding only when the CUDA variant was installed (the GPU
 * image does; CPU installs skip it). Checking first keeps CPU machines from logging a load failure.
 */
export function cudaProviderInstalled(): boolean {
  const packageDir = dirname(createRequire(import.meta.url).resolve("onnxruntime-node/package.json"));
  const binDir = join(packageDir, "bin", `napi-v6`, process.platform, process.arch);
  return existsSync(join(binDir, "libonnxruntime_providers_cuda.so"));
}

export interface CreatedSession {
  session: ort.InferenceSession;
  device: "cpu" | "cuda";
}

/** `model`: an .onnx path, or the graph's bytes (a graph built in memory, such as the batched scorer). */
export async function createSession(model: string | Uint8Array, device: Device, intraOpThreads: number): Promise<CreatedSession> {
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: "all",
    ...(intraOpThreads > 0 ? { intraOpNumThreads: intraOpThreads } : {}),
  };
  if (device === "cuda" || (device === "auto" && cudaProviderInstalled())) {
    try {
      return { session: await create(model, { ...base, executionProviders: ["cuda"] }), device: "cuda" };
    } catch (error) {
      if (device === "cuda") {
        throw new Error(`CUDA was requested but onnxruntime could not create a CUDA session: ${(error as Error).message}`);
      }
    }
  }
  return { session: await create(model, { ...base, executionProviders: ["cpu"] }), device: "cpu" };
}

function create(model: string | Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  return typeof model === "string" ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model, options);
}
