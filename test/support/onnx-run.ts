/**
 * Saves a GraphBuilder to a temporary directory and opens it with onnxruntime-node (CPU), so tests
 * exercise the same path as production: serialisation with external data, then ORT's optimizer.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import type { GraphBuilder } from "../../gpu-worker/src/model/onnx/graph-builder.ts";
import { saveModel } from "../../gpu-worker/src/model/onnx/save.ts";

export interface LoadedGraph {
  session: ort.InferenceSession;
  /** Releases the session and deletes the temporary files. */
  dispose(): Promise<void>;
}

export async function loadGraph(graph: GraphBuilder): Promise<LoadedGraph> {
  const dir = await mkdtemp(join(tmpdir(), `${graph.name}-`));
  try {
    const { modelPath } = await saveModel(graph, dir, "model.onnx");
    const session = await ort.InferenceSession.create(modelPath);
    return {
      session,
      async dispose() {
        await session.release();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** int64 [rows.length, width] from equal-length rows of numbers. */
export function int64Tensor(rows: number[][]): ort.Tensor {
  const width = rows[0]?.length ?? 0;
  if (rows.some((r) => r.length !== width)) throw new Error("int64Tensor: rows differ in length");
  return new ort.Tensor("int64", BigInt64Array.from(rows.flat(), BigInt), [rows.length, width]);
}

/** Right-pads token rows with `padId` (mask 0) to the longest row, as the tokenizer does. */
export function padBatch(docs: number[][], padId = 0): { ids: number[][]; mask: number[][] } {
  const width = Math.max(...docs.map((d) => d.length));
  return {
    ids: docs.map((d) => [...d, ...Array<number>(width - d.length).fill(padId)]),
    mask: docs.map((d) => [...Array<number>(d.length).fill(1), ...Array<number>(width - d.length).fill(0)]),
  };
}

/** |a − b| ≤ tol·max(1, |b|) element-wise; returns the worst violation ratio (≤ 1 passes). */
export function worstRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-4): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} ≠ ${expected.length}`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const ratio = Math.abs(actual[i]! - expected[i]!) / (tol * Math.max(1, Math.abs(expected[i]!)));
    if (!(ratio <= worst)) worst = Number.isNaN(ratio) ? Infinity : ratio;
  }
  return worst;
}
