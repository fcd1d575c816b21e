/// <reference path="./msgpackr-no-eval.d.ts" />
/**
 * The q-net wire format, version 1: one msgpack map with typed-array extensions.
 * Documented for other languages in shared/FORMATS.md ("Q-net wire format, version 1").
 *
 * msgpackr comes from its "index-no-eval" entry: the default build compiles record readers
 * with new Function, which workerd (the edge) forbids. We never use records (useRecords:
 * false keeps the bytes plain msgpack that any language can read), so nothing is lost.
 */
import { Packr, Unpackr } from "msgpackr/index-no-eval";
import { unpackOneValue } from "../msgpack-one.ts";
import * as z from "zod";
import { assertValidQNet, describeQNetProblems, qnetShapeProblems } from "./evaluate.ts";
import { float32ArrayToHalf, halfToFloat32Array } from "./half.ts";
import { ACTIVATIONS, type QNet } from "./types.ts";

export const QNET_WIRE_FORMAT = "hypencoder.qnet";
export const QNET_WIRE_VERSION = 1;
export const QNET_WIRE_DTYPES = ["float32", "float16"] as const;
export type QNetWireDtype = (typeof QNET_WIRE_DTYPES)[number];

/** Thrown by decodeQNet (and encodeQNet for invalid input); the message says what is wrong. */
export class QNetWireError extends Error {
  override name = "QNetWireError";
}

// Typed arrays go on the wire as raw bytes in host order; every JS engine we target
// (x86, ARM) is little-endian, and the format is defined as little-endian.
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
function assertLittleEndian(): void {
  if (!HOST_IS_LITTLE_ENDIAN) throw new QNetWireError("q-net wire format needs a little-endian host");
}

/** A short description of an unexpected value for error messages (never dumps big arrays). */
function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `a plain array of ${v.length} elements`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of ${(v as Uint8Array).length} elements`;
  if (typeof v === "object") return `a ${v.constructor?.name ?? "null-prototype"} object`;
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === "function" || typeof v === "symbol") return typeof v;
  return typeof v === "bigint" ? `${v}n` : String(v);
}

/** float32 arrays travel as Float32Array, float16 ones as Uint16Array of IEEE half bits. */
const TYPED_ARRAY_FOR_DTYPE = { float32: Float32Array, float16: Uint16Array } as const;

const typedArraySchema = z.custom<Float32Array | Uint16Array>(
  (v) => v instanceof Float32Array || v instanceof Uint16Array,
  {
    error: (iss) =>
      `expected a Float32Array or Uint16Array (msgpack ext type 0x74), got ${describeValue(iss.input)}`,
  },
);

/**
 * Validates a decoded wire object completely: header, flags, dims, array counts, each
 * array's exact length and typed-array kind (which must match dtype), and residual dims.
 * Exported so the edge can validate without decoding twice. Plain number arrays are
 * rejected, not converted: a conforming encoder always writes typed arrays, and accepting
 * both would double what every other decoder has to support.
 */
export const qnetWireSchema = z
  .object({
    format: z.literal(QNET_WIRE_FORMAT, {
      error: (iss) => `expected format "${QNET_WIRE_FORMAT}", got ${describeValue(iss.input)}`,
    }),
    version: z.literal(QNET_WIRE_VERSION, {
      error: (iss) => `unsupported version ${describeValue(iss.input)}; this decoder reads version ${QNET_WIRE_VERSION}`,
    }),
    dims: z.array(z.number({ error: (iss) => `expected a number, got ${describeValue(iss.input)}` }), {
      error: (iss) => `expected an array of numbers, got ${describeValue(iss.input)}`,
    }),
    activation: z.enum(ACTIVATIONS, {
      error: (iss) => `unknown activation ${describeValue(iss.input)} (expected one of ${ACTIVATIONS.join(", ")})`,
    }),
    doLayerNorm: z.boolean(),
    doResidual: z.boolean(),
    doResidualOnLast: z.boolean(),
    layerNormBeforeResidual: z.boolean(),
    dtype: z.enum(QNET_WIRE_DTYPES, {
      error: (iss) => `expected dtype "float32" or "float16", got ${describeValue(iss.input)}`,
    }),
    weights: z.array(typedArraySchema, {
      error: (iss) => `expected an array of typed arrays, got ${describeValue(iss.input)}`,
    }),
    biases: z.array(typedArraySchema, {
      error: (iss) => `expected an array of typed arrays, got ${describeValue(iss.input)}`,
    }),
  })
  .superRefine((wire, ctx) => {
    // Runs only once every field above has the right type.
    const problems = qnetShapeProblems(
      wire,
      wire.weights.map((w) => w.length),
      wire.biases.map((b) => b.length),
      wire.dtype,
    );
    const kind = TYPED_ARRAY_FOR_DTYPE[wire.dtype];
    for (const field of ["weights", "biases"] as const) {
      wire[field].forEach((a, i) => {
        if (!(a instanceof kind)) {
          problems.push({
            path: [field, i],
            message: `dtype is ${wire.dtype}, so expected a ${kind.name}, got ${describeValue(a)}`,
          });
        }
      });
    }
    for (const p of problems) ctx.addIssue({ code: "custom", path: p.path, message: p.message });
  });

/** A validated wire object, before float16 arrays are widened. */
export type QNetWire = z.infer<typeof qnetWireSchema>;

// Plain msgpack maps (no msgpackr records) plus the typed-array extension.
const packr = new Packr({ useRecords: false, moreTypes: true });
const unpackr = new Unpackr({ useRecords: false, moreTypes: true, mapsAsObjects: true, structuredClone: false });

/**
 * Encodes a q-net. float16 rounds every weight to nearest-even half. Throws QNetWireError
 * if the q-net is malformed, so no invalid bytes are ever produced. The result owns its
 * whole ArrayBuffer (safe to transfer or to send as `result.buffer`).
 */
export function encodeQNet(qnet: QNet, options: { dtype?: QNetWireDtype } = {}): Uint8Array {
  assertLittleEndian();
  const dtype = options.dtype ?? "float32";
  if (!QNET_WIRE_DTYPES.includes(dtype)) {
    throw new QNetWireError(`q-net: unknown dtype ${describeValue(dtype)}; expected "float32" or "float16"`);
  }
  try {
    assertValidQNet(qnet);
  } catch (e) {
    throw new QNetWireError((e as Error).message);
  }
  const convert = (a: Float32Array): Float32Array | Uint16Array =>
    dtype === "float16" ? float32ArrayToHalf(a) : a;
  // Key order is fixed for readability of hex dumps; decoders must not depend on it.
  const wire: QNetWire = {
    format: QNET_WIRE_FORMAT,
    version: QNET_WIRE_VERSION,
    dims: [...qnet.dims],
    activation: qnet.activation,
    doLayerNorm: qnet.doLayerNorm,
    doResidual: qnet.doResidual,
    doResidualOnLast: qnet.doResidualOnLast,
    layerNormBeforeResidual: qnet.layerNormBeforeResidual,
    dtype,
    weights: qnet.weights.map(convert),
    biases: qnet.biases.map(convert),
  };
  const packed = packr.pack(wire);
  // Packr returns a view into a shared, reused buffer (a Node Buffer under Node); copy so
  // callers get a plain Uint8Array that owns exactly its bytes.
  const bytes = new Uint8Array(packed.length);
  bytes.set(packed);
  return bytes;
}

/** Parses msgpack bytes into exactly one value; errors become QNetWireError. */
function unpackOne(bytes: Uint8Array): unknown {
  if (!(bytes instanceof Uint8Array)) {
    throw new QNetWireError(`q-net: expected bytes as a Uint8Array, got ${describeValue(bytes)}`);
  }
  if (bytes.length === 0) throw new QNetWireError("q-net: no bytes to decode");
  const one = unpackOneValue(unpackr, bytes);
  if (one.ok) return one.value;
  if (one.problem === "trailing") throw new QNetWireError("q-net: trailing bytes after the msgpack message");
  if (one.problem === "empty") throw new QNetWireError("q-net: no bytes to decode");
  // msgpackr flags any RangeError as "incomplete", so a malformed typed-array payload can
  // look like truncation too; the detail tells them apart.
  if (one.incomplete) throw new QNetWireError(`q-net: truncated msgpack data (${bytes.length} bytes): ${one.message}`);
  throw new QNetWireError(`q-net: invalid msgpack: ${one.message}`);
}

/**
 * Validates an already-unpacked wire object and widens it to a QNet (float32 arrays).
 * Throws QNetWireError listing the first few problems.
 */
export function qnetFromWire(value: unknown): QNet {
  const parsed = qnetWireSchema.safeParse(value);
  if (!parsed.success) throw new QNetWireError(describeQNetProblems(parsed.error.issues));
  const wire = parsed.data;
  // float32 arrays from msgpackr are fresh, aligned copies, so they can be used directly.
  const widen = (a: Float32Array | Uint16Array): Float32Array =>
    a instanceof Uint16Array ? halfToFloat32Array(a) : a;
  return {
    dims: wire.dims,
    activation: wire.activation,
    doLayerNorm: wire.doLayerNorm,
    doResidual: wire.doResidual,
    doResidualOnLast: wire.doResidualOnLast,
    layerNormBeforeResidual: wire.layerNormBeforeResidual,
    weights: wire.weights.map(widen),
    biases: wire.biases.map(widen),
  };
}

/** Decodes and fully validates q-net bytes; always returns Float32Array weights. */
export function decodeQNet(bytes: Uint8Array): QNet {
  assertLittleEndian();
  return qnetFromWire(unpackOne(bytes));
}
