/**
 * The Hypencoder hypernetwork ("hyperhead") as ONNX: BERT's token states [B,S,h] → the q-net's
 * weights weight_i [B, in_i, out_i] and biases bias_j [B, d[j+1]].
 *
 * Each "slot" (weight slots i = 0..L first, then bias slots j = 0..L-1) is one attention read of
 * the tokens by learned query rows, followed by relu → layer norm → Linear(in → in) → + base.
 * Two algebraic rewrites make the graph smaller and faster without changing the function:
 *
 * - Keys are folded away. The logits Q·(H·Wkᵀ + bk)ᵀ / √out equal (Q·Wk/√out)·Hᵀ plus Q·bk, a
 *   per-row constant that softmax ignores. So every slot's scaled Q·Wk is precomputed (float64)
 *   and stacked into one [Σout, h] matrix: one MatMul and one Softmax serve all slots, and no key
 *   projection is computed at run time (Σout·h per token instead of Σin·h).
 * - The value projections of all slots are one MatMul [h, Σin] (one large GEMM instead of 2L+1
 *   small ones), then Split.
 *
 * The projection bias is folded into the base matrix (both are added after the Linear).
 */
import type { QNetArchitecture } from "../../../../shared/qnet/types.ts";
import { QNET_LAYER_NORM_EPS } from "../../../../shared/qnet/types.ts";
import { type Float32Tensor, GRAPH_IO, type TensorMap } from "../types.ts";
import { ElemType, type GraphBuilder, transpose2d } from "./graph-builder.ts";

/** Added to masked tokens' logits: exp() of it underflows to exactly 0 next to any real logit. */
const MASKED_LOGIT = -1e9;

export interface HyperheadOutputs {
  /** weight_i values, [B, in_i, out_i] (already transposed for x·W). */
  weights: string[];
  /** bias_j values, [B, d[j+1]]. */
  biases: string[];
}

/** One attention read of the hyperhead. */
export interface HyperSlot {
  kind: "weight" | "bias";
  /** The q-net layer it produces (weight i or bias j). */
  layer: number;
  /** Index of its key_projections / value_projections. */
  projectionIndex: number;
  /** Width of its keys, values and result rows. */
  inSize: number;
  /** Number of result rows (the q-net layer's output size; 1 for a bias). */
  outSize: number;
  queryName: string;
  projectionName: string;
  baseName: string;
}

/** The slots in the official order: weights 0..L, then biases 0..L-1. */
export function hyperSlots(qnet: Pick<QNetArchitecture, "dims">): HyperSlot[] {
  const d = qnet.dims;
  if (d.length < 2) throw new Error(`q-net dims [${d.join(",")}]: need at least an input and an output size`);
  const hidden = d.length - 2;
  const slots: HyperSlot[] = [];
  for (let i = 0; i <= hidden; i++) {
    slots.push({
      kind: "weight",
      layer: i,
      projectionIndex: i,
      inSize: d[i]!,
      outSize: d[i + 1]!,
      queryName: `weight_query_embeddings.${i}`,
      projectionName: `weight_hyper_projection.${i}`,
      baseName: `hyper_base_matrices.${i}`,
    });
  }
  for (let j = 0; j < hidden; j++) {
    slots.push({
      kind: "bias",
      layer: j,
      projectionIndex: hidden + 1 + j,
      inSize: d[j + 1]!,
      outSize: 1,
      queryName: `bias_query_embeddings.${j}`,
      projectionName: `bias_hyper_projection.${j}`,
      baseName: `hyper_base_vectors.${j}`,
    });
  }
  return slots;
}

/**
 * Adds the hyperhead to `g`. `hidden` is float [B,S,h], `attentionMask` int64 [B,S] (1 = token);
 * `weights` are named as in the official module without the "query_encoder." prefix.
 * At least one token per row must be unmasked ([CLS] always is).
 */
export function addHyperhead(
  g: GraphBuilder,
  hidden: string,
  attentionMask: string,
  qnet: QNetArchitecture,
  weights: TensorMap,
): HyperheadOutputs {
  const slots = hyperSlots(qnet);
  const tensors = new SlotTensors(weights);
  const h = tensors.hiddenSize(slots[0]!);

  // Attention of every slot's query rows over the tokens: [B, Σout, S].
  const foldedQueries = g.initializer("hyperhead.folded_queries", foldQueries(slots, tensors, h), [sumOf(slots, "outSize"), h]);
  const logits = g.matmul(foldedQueries, g.transpose(hidden, [0, 2, 1], "hyperhead.hidden_t"), "hyperhead.logits");
  const attention = g.op("Softmax", [g.add(logits, maskBias(g, attentionMask), "hyperhead.masked_logits")], { axis: { int: -1 } }, "hyperhead.attention");
  const attentionBySlot = g.split(attention, slots.map((s) => s.outSize), 1, "hyperhead.attention_split");

  // Every slot's values: [B, S, Σin], split into [B, S, in_s].
  const valueWeight = concatColumns(slots.map((s) => tensors.get(`value_projections.${s.projectionIndex}.weight`, [s.inSize, h])));
  const valueBias = concatColumns(slots.map((s) => tensors.get(`value_projections.${s.projectionIndex}.bias`, [s.inSize])));
  const values = g.add(
    g.matmul(hidden, g.initializer("hyperhead.values.weight_t", valueWeight, [h, valueBias.length]), "hyperhead.values.matmul"),
    g.initializer("hyperhead.values.bias", valueBias, [valueBias.length]),
    "hyperhead.values",
  );
  const valuesBySlot = g.split(values, slots.map((s) => s.inSize), 2, "hyperhead.values_split");

  const out: HyperheadOutputs = { weights: [], biases: [] };
  slots.forEach((slot, s) => {
    const rows = slotRows(g, slot, tensors, attentionBySlot[s]!, valuesBySlot[s]!);
    if (slot.kind === "weight") out.weights.push(g.transpose(rows, [0, 2, 1], `hyperhead.weight_${slot.layer}`));
    else out.biases.push(g.squeeze(rows, [1], `hyperhead.bias_${slot.layer}`));
  });
  return out;
}

/** Declares the hyperhead's values as the graph outputs GRAPH_IO.weight(i) / GRAPH_IO.bias(j). */
export function addHyperheadOutputs(g: GraphBuilder, outputs: HyperheadOutputs, qnet: Pick<QNetArchitecture, "dims">): void {
  const d = qnet.dims;
  outputs.weights.forEach((w, i) => g.output(w, GRAPH_IO.weight(i), ElemType.float, ["batch", d[i]!, d[i + 1]!]));
  outputs.biases.forEach((b, j) => g.output(b, GRAPH_IO.bias(j), ElemType.float, ["batch", d[j + 1]!]));
}

/** A slot's [B, out, in] result: Linear(LN(relu(A·V))) + base. */
function slotRows(g: GraphBuilder, slot: HyperSlot, tensors: SlotTensors, attention: string, values: string): string {
  const hint = `hyperhead.${slot.kind}_${slot.layer}`;
  const attended = g.matmul(attention, values, `${hint}.attended`);
  const normed = g.layerNorm(g.op("Relu", [attended], {}, `${hint}.relu`), slot.inSize, QNET_LAYER_NORM_EPS, undefined, undefined, `${hint}.ln`);
  const projWeight = tensors.get(`${slot.projectionName}.weight`, [slot.inSize, slot.inSize]);
  const projBias = tensors.get(`${slot.projectionName}.bias`, [slot.inSize]);
  const baseShape = slot.kind === "weight" ? [1, slot.outSize, slot.inSize] : [1, slot.inSize];
  const base = tensors.get(slot.baseName, baseShape);
  // base + projection bias, broadcast over the rows: one Add at run time instead of two.
  const offset = Float32Array.from(base.data, (v, k) => v + projBias.data[k % slot.inSize]!);
  const projected = g.matmul(normed, g.initializer(`${hint}.proj.weight_t`, transpose2d(projWeight.data, slot.inSize, slot.inSize), [slot.inSize, slot.inSize]), `${hint}.proj`);
  return g.add(projected, g.initializer(`${hint}.offset`, offset, [slot.outSize, slot.inSize]), `${hint}.rows`);
}

/**
 * Every slot's query rows times its key projection, scaled by 1/√out_s: [Σout, h] row-major.
 * Computed in float64 so the fold adds no error beyond one float32 rounding. At the published size
 * this is ~2.7 G multiply-adds of plain JS, a few seconds once per import (row blocking for cache
 * reuse measured no faster).
 */
function foldQueries(slots: HyperSlot[], tensors: SlotTensors, h: number): Float32Array {
  const folded = new Float32Array(sumOf(slots, "outSize") * h);
  const row = new Float64Array(h);
  let offset = 0;
  for (const slot of slots) {
    const queryShape = slot.kind === "weight" ? [1, slot.outSize, slot.inSize] : [1, 1, slot.inSize];
    const queries = tensors.get(slot.queryName, queryShape).data;
    const key = tensors.get(`key_projections.${slot.projectionIndex}.weight`, [slot.inSize, h]).data;
    tensors.get(`key_projections.${slot.projectionIndex}.bias`, [slot.inSize]); // present, but cancels in softmax
    const scale = 1 / Math.sqrt(slot.outSize);
    for (let r = 0; r < slot.outSize; r++) {
      row.fill(0);
      for (let k = 0; k < slot.inSize; k++) {
        const q = queries[r * slot.inSize + k]!;
        for (let c = 0, base = k * h; c < h; c++) row[c] += q * key[base + c]!;
      }
      for (let c = 0; c < h; c++) folded[offset + c] = row[c]! * scale;
      offset += h;
    }
  }
  return folded;
}

/** [B, 1, S] float: 0 for tokens, MASKED_LOGIT for padding. */
function maskBias(g: GraphBuilder, attentionMask: string): string {
  const mask = g.cast(attentionMask, ElemType.float, "hyperhead.mask_float");
  const offMask = g.sub(mask, g.floats("hyperhead.one", [1], []), "hyperhead.mask_minus_one");
  const bias = g.mul(offMask, g.floats("hyperhead.masked_logit", [-MASKED_LOGIT], []), "hyperhead.mask_bias_2d");
  return g.unsqueeze(bias, [1], "hyperhead.mask_bias");
}

/** Stacks torch Linear weights [in_s, h] side by side as one [h, Σin_s] matrix (or concatenates biases). */
function concatColumns(parts: Float32Tensor[]): Float32Array {
  if (parts[0]!.shape.length === 1) {
    const out = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p.data, at);
      at += p.data.length;
    }
    return out;
  }
  const h = parts[0]!.shape[1]!;
  const width = parts.reduce((n, p) => n + p.shape[0]!, 0);
  const out = new Float32Array(h * width);
  let col = 0;
  for (const p of parts) {
    const rows = p.shape[0]!;
    for (let r = 0; r < rows; r++) for (let c = 0; c < h; c++) out[c * width + col + r] = p.data[r * h + c]!;
    col += rows;
  }
  return out;
}

function sumOf(slots: HyperSlot[], key: "inSize" | "outSize"): number {
  return slots.reduce((n, s) => n + s[key], 0);
}

/** Weight lookup with shape checks, so a wrong checkpoint fails here and not deep in onnxruntime. */
class SlotTensors {
  constructor(private readonly weights: TensorMap) {}

  get(name: string, shape: number[]): Float32Tensor {
    const t = this.weights.get(name);
    if (!t) throw new Error(`hyperhead: missing tensor ${name}`);
    if (t.shape.length !== shape.length || t.shape.some((n, k) => n !== shape[k])) {
      throw new Error(`hyperhead: tensor ${name} has shape [${t.shape.join(",")}], expected [${shape.join(",")}]`);
    }
    return t;
  }

  /** h, read off the first key projection ([in, h]). */
  hiddenSize(slot: HyperSlot): number {
    const name = `key_projections.${slot.projectionIndex}.weight`;
    const t = this.weights.get(name);
    if (!t || t.shape.length !== 2) throw new Error(`hyperhead: missing or non-2-D tensor ${name}`);
    return t.shape[1]!;
  }
}
