/**
 * Decoding a byte string that must hold exactly one msgpack value. msgpackr's own `unpack` would do,
 * but its trailing-bytes error embeds a JSON dump of the whole decoded value — megabytes for a q-net
 * or a shard section — so this stops after the second value instead.
 */
import type { Unpackr } from "msgpackr/index-no-eval";

export type OneValue =
  | { ok: true; value: unknown }
  | { ok: false; problem: "trailing" }
  | { ok: false; problem: "empty" }
  | { ok: false; problem: "invalid"; message: string; incomplete: boolean };

export function unpackOneValue(unpackr: Unpackr, bytes: Uint8Array): OneValue {
  const values: unknown[] = [];
  try {
    unpackr.unpackMultiple(bytes, (value: unknown) => {
      values.push(value);
      return values.length < 2;
    });
  } catch (e) {
    const error = e as Error & { incomplete?: boolean };
    return { ok: false, problem: "invalid", message: String(error.message).slice(0, 200), incomplete: error.incomplete === true };
  }
  if (values.length === 0) return { ok: false, problem: "empty" };
  if (values.length > 1) return { ok: false, problem: "trailing" };
  return { ok: true, value: values[0] };
}
