/**
 * Serialises a GraphBuilder to `<dir>/<file>`, with initializers larger than a threshold stored as
 * ONNX external data in `<dir>/<file>.data` (a protobuf is capped at 2 GB; BERT-base is ~440 MB).
 */
import { createWriteStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { once } from "node:events";
// onnx-proto is CommonJS without static named exports, so take the namespace off the default export.
import onnxProto from "onnx-proto";
import type { onnx as Onnx } from "onnx-proto";

const { onnx } = onnxProto;
import { type GraphBuilder, encodeModelWith, initializerBytes, inlineTensor, tensorHeader } from "./graph-builder.ts";

/** Tensors at or above this size go to the external data file. */
const EXTERNAL_THRESHOLD_BYTES = 1024;
/** Offsets in the data file are aligned so the runtime can memory-map tensors. */
const EXTERNAL_ALIGNMENT = 64;

export interface SavedModel {
  modelPath: string;
  dataPath: string | undefined;
  bytes: number;
}

export async function saveModel(graph: GraphBuilder, dir: string, fileName: string): Promise<SavedModel> {
  const dataFileName = `${fileName}.data`;
  const dataPath = join(dir, dataFileName);
  const external = graph.initializers.filter((t) => t.data.byteLength >= EXTERNAL_THRESHOLD_BYTES);
  const tensors: Onnx.ITensorProto[] = [];
  let offset = 0;
  let dataBytes = 0;
  if (external.length > 0) {
    const out = createWriteStream(dataPath);
    for (const init of graph.initializers) {
      if (init.data.byteLength < EXTERNAL_THRESHOLD_BYTES) continue;
      const padding = (EXTERNAL_ALIGNMENT - (offset % EXTERNAL_ALIGNMENT)) % EXTERNAL_ALIGNMENT;
      if (padding > 0 && !out.write(new Uint8Array(padding))) await once(out, "drain");
      offset += padding;
      const bytes = initializerBytes(init);
      if (!out.write(bytes)) await once(out, "drain");
      tensors.push({
        ...tensorHeader(init),
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: "location", value: dataFileName },
          { key: "offset", value: String(offset) },
          { key: "length", value: String(bytes.byteLength) },
        ],
      });
      offset += bytes.byteLength;
    }
    out.end();
    await once(out, "finish");
    dataBytes = offset;
  }
  for (const init of graph.initializers) {
    if (init.data.byteLength >= EXTERNAL_THRESHOLD_BYTES) continue;
    tensors.push(inlineTensor(init));
  }
  const encoded = encodeModelWith(graph, tensors);
  const modelPath = join(dir, fileName);
  await writeFile(modelPath, encoded);
  return { modelPath, dataPath: external.length > 0 ? dataPath : undefined, bytes: encoded.byteLength + dataBytes };
}
