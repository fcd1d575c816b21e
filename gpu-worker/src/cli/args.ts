/**
 * Argument parsing for the `hypencoder` CLI on top of node:util parseArgs, with the errors a user
 * should see: unknown options, missing required options, non-integer numbers.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

export class UsageError extends Error {
  override name = "UsageError";
}

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parse<O extends Options>(argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\nusage: ${usage}`);
  }
}

export function required(values: Record<string, unknown>, name: string, usage: string): string {
  const value = values[name];
  if (typeof value !== "string" || value === "") throw new UsageError(`missing --${name}\nusage: ${usage}`);
  return value;
}

/** `{ [key]: value }`, or nothing when the option was not given (so a default applies downstream). */
export function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** An optional positive integer option. */
export function positiveInt(values: Record<string, unknown>, name: string): number | undefined {
  return integerFlag(values, name, 1);
}

export function nonNegativeInt(values: Record<string, unknown>, name: string): number | undefined {
  return integerFlag(values, name, 0);
}

function integerFlag(values: Record<string, unknown>, name: string, min: 0 | 1): number | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== "string" || !/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${name} must be a ${min === 1 ? "positive" : "non-negative"} integer, got ${JSON.stringify(value)}`);
  }
  return n;
}
