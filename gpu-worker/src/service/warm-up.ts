/**
 * Loads every graph's session before the worker takes traffic. onnxruntime sessions are created on
 * first use, so without this the first requests would pay seconds of session (and CUDA) start-up,
 * and the device each graph runs on would be unknown at start.
 */
import { float32ArrayToHalf } from "../../../shared/qnet/half.ts";
import type { HypencoderRuntime } from "../model/runtime/runtime.ts";

export async function warmUp(runtime: Pick<HypencoderRuntime, "prepareQueries" | "embedDocuments">): Promise<void> {
  const [prepared] = await runtime.prepareQueries(["warm up"]);
  const embedding = await runtime.embedDocuments(["warm up"]);
  try {
    await prepared!.score(float32ArrayToHalf(embedding));
    await prepared!.score(embedding);
  } finally {
    await prepared!.release();
  }
}
