/**
 * The HypencoderDualEncoder config.json → the parts of the architecture it fixes.
 *
 * Keys that change the computation are validated; a value we do not implement is an error naming
 * the key, never silently ignored. Training-only keys (dropout, freezing, losses) are accepted.
 * Unknown keys inside converter_kwargs are rejected too: they are the q-net's constructor arguments,
 * so an unknown one means a converter we do not know.
 */
import { z } from "zod";
import { ACTIVATIONS, type Activation, type QNetArchitecture } from "../../../../shared/qnet/types.ts";
import type { Pooling } from "../types.ts";

export class CheckpointConfigError extends Error {
  override name = "CheckpointConfigError";
}

const POOLINGS = ["cls", "mean"] as const satisfies readonly Pooling[];
const EMBEDDING_REPRESENTATIONS = ["cls", "mean"] as const;

const converterSchema = z.strictObject({
  vector_dimensions: z.array(z.int().positive()),
  activation_type: z.string().default("relu"),
  do_layer_norm: z.boolean().default(true),
  do_residual: z.boolean().default(true),
  // null means "same as do_residual" in the official converter.
  do_residual_on_last: z.boolean().nullable().default(false),
  layer_norm_before_residual: z.boolean().default(true),
  do_dropout: z.boolean().optional(), // training only
  dropout_prob: z.number().optional(), // training only
});

const configSchema = z.looseObject({
  query_encoder_kwargs: z.looseObject({
    model_name_or_path: z.string().min(1),
    base_encoder_output_dim: z.int().positive().default(768),
    converter_kwargs: converterSchema,
    embedding_representation: z.string().nullable().optional(),
    freeze_transformer: z.boolean().optional(), // training only
  }),
  passage_encoder_kwargs: z
    .looseObject({
      model_name_or_path: z.string().optional(),
      pooling_type: z.string().default("cls"),
      freeze_transformer: z.boolean().optional(), // training only
    })
    .default({ pooling_type: "cls" }),
  shared_encoder: z.boolean().default(false),
});

export interface HypencoderConfigInfo {
  qnet: QNetArchitecture;
  pooling: Pooling;
  sharedEncoder: boolean;
  /** query_encoder_kwargs.model_name_or_path */
  baseModelName: string;
  /** passage_encoder_kwargs.model_name_or_path, if given. */
  passageModelName?: string;
  /** query_encoder_kwargs.base_encoder_output_dim */
  baseEncoderOutputDim: number;
}

/** Validates a parsed config.json. `source` (the file path) prefixes every error. */
export function parseHypencoderConfig(json: unknown, source = "config.json"): HypencoderConfigInfo {
  const fail = (key: string, msg: string): never => {
    throw new CheckpointConfigError(`${source}: ${key}: ${msg}`);
  };
  const parsed = configSchema.safeParse(json);
  if (!parsed.success) {
    const { key, message } = describeZodIssue(parsed.error.issues[0]);
    fail(key, message);
  }
  const cfg = parsed.data!;
  const q = cfg.query_encoder_kwargs;
  const conv = q.converter_kwargs;
  const convKey = (k: string) => `query_encoder_kwargs.converter_kwargs.${k}`;

  const dims = conv.vector_dimensions;
  if (dims.length < 3) {
    fail(convKey("vector_dimensions"), `needs at least 3 entries (input, hidden…, 1), got [${dims.join(", ")}]`);
  }
  if (dims[dims.length - 1] !== 1) {
    fail(convKey("vector_dimensions"), `last entry must be 1 (the score), got [${dims.join(", ")}]`);
  }
  if (!(ACTIVATIONS as readonly string[]).includes(conv.activation_type)) {
    fail(convKey("activation_type"), `unknown activation "${conv.activation_type}" (supported: ${ACTIVATIONS.join(", ")})`);
  }
  const doResidualOnLast = conv.do_residual_on_last ?? conv.do_residual;
  if (doResidualOnLast && !conv.do_residual) {
    fail(convKey("do_residual_on_last"), "cannot be true when do_residual is false");
  }
  const qnet: QNetArchitecture = {
    dims: [...dims],
    activation: conv.activation_type as Activation,
    doLayerNorm: conv.do_layer_norm,
    doResidual: conv.do_residual,
    doResidualOnLast,
    layerNormBeforeResidual: conv.layer_norm_before_residual,
  };
  checkResidualDims(qnet, (msg) => fail(convKey("vector_dimensions"), msg));

  if (q.embedding_representation != null && !(EMBEDDING_REPRESENTATIONS as readonly string[]).includes(q.embedding_representation)) {
    fail("query_encoder_kwargs.embedding_representation", `unknown value "${q.embedding_representation}" (expected null, "cls" or "mean")`);
  }
  const pooling = cfg.passage_encoder_kwargs.pooling_type;
  if (!(POOLINGS as readonly string[]).includes(pooling)) {
    fail("passage_encoder_kwargs.pooling_type", `unknown pooling "${pooling}" (supported: ${POOLINGS.join(", ")})`);
  }

  return {
    qnet,
    pooling: pooling as Pooling,
    sharedEncoder: cfg.shared_encoder,
    baseModelName: q.model_name_or_path,
    ...(cfg.passage_encoder_kwargs.model_name_or_path ? { passageModelName: cfg.passage_encoder_kwargs.model_name_or_path } : {}),
    baseEncoderOutputDim: q.base_encoder_output_dim,
  };
}

/** A zod issue as "key path" + message, e.g. "a.b[1]" + "expected number, got string". */
export function describeZodIssue(issue: z.core.$ZodIssue): { key: string; message: string } {
  const key = issue.path.reduce<string>(
    (acc, seg) => (typeof seg === "number" ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)),
    "",
  );
  if (issue.code === "unrecognized_keys") {
    return { key, message: `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(", ")} (not supported)` };
  }
  const missing = issue.code === "invalid_type" && /received undefined$/.test(issue.message);
  return { key: key || "(top level)", message: missing ? "is required" : issue.message.replace(/^Invalid input: /, "") };
}

/** A residual connection adds the layer's input to its output, so those widths must match. */
function checkResidualDims(arch: QNetArchitecture, fail: (msg: string) => never): void {
  const L = arch.dims.length - 2;
  for (let j = 0; j < L; j++) {
    const residual = arch.doResidual && (j < L - 1 || arch.doResidualOnLast);
    if (residual && arch.dims[j] !== arch.dims[j + 1]) {
      fail(
        `hidden layer ${j} maps ${arch.dims[j]} → ${arch.dims[j + 1]} but has a residual connection, ` +
          `which needs equal widths`,
      );
    }
  }
}
