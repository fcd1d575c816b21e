/**
 * The q-net: the small per-query MLP that a Hypencoder's hypernetwork produces.
 * Both the GPU worker and clients (via the wire format in ./wire.ts) use these types.
 */

/** Activations the official RepeatedDenseBlockConverter knows. GELU is the exact (erf) form. */
export const ACTIVATIONS = ["relu", "gelu", "tanh", "sigmoid", "leaky_relu"] as const;
export type Activation = (typeof ACTIVATIONS)[number];

/** Slope of torch.nn.LeakyReLU() with its default argument. */
export const LEAKY_RELU_SLOPE = 0.01;
/** eps of F.layer_norm without a learned scale or bias, as the official q-net calls it. */
export const QNET_LAYER_NORM_EPS = 1e-5;

/** The shape and flags of a q-net; fixed per model. */
export interface QNetArchitecture {
  /** vector_dimensions, e.g. [768, 768, 768, 1]: L = dims.length - 2 hidden layers. */
  dims: number[];
  activation: Activation;
  doLayerNorm: boolean;
  doResidual: boolean;
  doResidualOnLast: boolean;
  layerNormBeforeResidual: boolean;
}

/** One query's q-net: the architecture plus the weights the hypernetwork produced. */
export interface QNet extends QNetArchitecture {
  /**
   * L+1 matrices. weights[i] is [dims[i], dims[i+1]] row-major, applied as x·W
   * (already the transpose of the hyperhead's [out, in] output).
   */
  weights: Float32Array[];
  /** L vectors; biases[j] has length dims[j+1]. The last (scoring) layer has no bias. */
  biases: Float32Array[];
}

/** Number of hidden layers: each is act → LN → residual. */
export function hiddenLayerCount(arch: Pick<QNetArchitecture, "dims">): number {
  return arch.dims.length - 2;
}
