/** Parameter checks shared by the search algorithms, so every option fails with the same kind of message. */

/** Throws a RangeError unless `value` is an integer in [min, max]. */
export function checkInteger(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in ${min}..${max}`;
    throw new RangeError(`${name} must be an integer ${range}, got ${String(value)}`);
  }
  return value;
}

/** Throws a RangeError unless `rowCount` is a valid shard size. */
export function checkRowCount(rowCount: number): number {
  return checkInteger("rowCount", rowCount, 0, 0xffffffff);
}
