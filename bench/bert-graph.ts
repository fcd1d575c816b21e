/**
 * Measures the document-encoder graph at BERT-base size with random weights: build, save (size of the
 * external data), session creation, and CPU latency of session.run. Not a test; prints numbers.
 *
 *   node --import tsx bench/bert-graph.ts [tokens=64] [batch=1] [runs=10]
 *
 * To compare malloc settings, run it again under
 * GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184 (ORT's arena
 * allocator makes per-run mallocs rare, so expect little difference for this graph).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { buildDocEncoderGraph } from "../gpu-worker/src/model/onnx/doc-encoder.ts";
import { saveModel } from "../gpu-worker/src/model/onnx/save.ts";
import { type BertDims, GRAPH_IO } from "../gpu-worker/src/model/types.ts";
import { randomBertWeights } from "../test/support/random-bert.ts";

const BERT_BASE: BertDims = {
  hiddenSize: 768,
  numLayers: 12,
  numHeads: 12,
  intermediateSize: 3072,
  vocabSize: 30522,
  maxPositions: 512,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
};

const [tokens = 64, batch = 1, runs = 10] = process.argv.slice(2).map(Number);
const seconds = (t0: number) => ((performance.now() - t0) / 1000).toFixed(2);

let t0 = performance.now();
const weights = randomBertWeights(BERT_BASE, 7);
console.log(`random weights: ${seconds(t0)} s`);

t0 = performance.now();
const graph = buildDocEncoderGraph(BERT_BASE, weights, "cls");
console.log(`build: ${seconds(t0)} s (${graph.nodes.length} nodes, ${graph.initializers.length} initializers)`);

const dir = await mkdtemp(join(tmpdir(), "bert-bench-"));
try {
  t0 = performance.now();
  const saved = await saveModel(graph, dir, "doc_encoder.onnx");
  console.log(`save: ${seconds(t0)} s, ${(saved.bytes / 1e6).toFixed(1)} MB`);

  t0 = performance.now();
  const session = await ort.InferenceSession.create(saved.modelPath);
  console.log(`session create: ${seconds(t0)} s`);

  const ids = BigInt64Array.from({ length: batch * tokens }, (_, i) => BigInt(i % tokens === 0 ? 101 : 1000 + ((i * 37) % 28000)));
  const feeds = {
    [GRAPH_IO.inputIds]: new ort.Tensor("int64", ids, [batch, tokens]),
    [GRAPH_IO.attentionMask]: new ort.Tensor("int64", new BigInt64Array(batch * tokens).fill(1n), [batch, tokens]),
  };
  await session.run(feeds); // warm-up: first run allocates and packs weights
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    t0 = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(
    `run ${batch}x${tokens}: median ${times[times.length >> 1]!.toFixed(1)} ms, min ${times[0]!.toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms over ${runs}`,
  );
  await session.release();
} finally {
  await rm(dir, { recursive: true, force: true });
}
