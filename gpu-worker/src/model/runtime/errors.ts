/**
 * Errors of the model runtime that a request can cause. Other runtime failures (a q-net of the wrong
 * shape, a batch that is not whole rows) are internal invariants, left as plain errors.
 */

/**
 * The request asks for more than the model can do: a token limit beyond its position table. The
 * message names the limit, never the input text. A RangeError, since a value is out of range; the
 * service recognises this class, not RangeError in general.
 */
export class ModelLimitError extends RangeError {
  override name = "ModelLimitError";
}
