/**
 * A numeric setting from a `[vars]` binding: absent or blank means its default; anything else must be
 * an integer within bounds. A misconfiguration must be loud (it throws, naming the setting), never a
 * silent fall back to some other limit.
 */
import { z } from "zod";

export interface IntegerBounds {
  min: number;
  max?: number;
}

export function integerSetting(name: string, value: string | undefined, defaultValue: number, bounds: IntegerBounds): number {
  if (value === undefined || value.trim() === "") return defaultValue;
  let schema = z.coerce.number().int().min(bounds.min);
  if (bounds.max !== undefined) schema = schema.max(bounds.max);
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new Error(`${name} must be ${describe(bounds)}, got ${JSON.stringify(value)}`);
  return parsed.data;
}

function describe({ min, max }: IntegerBounds): string {
  if (max !== undefined) return `an integer from ${min} to ${max}`;
  if (min === 0) return "a non-negative integer";
  if (min === 1) return "a positive integer";
  return `an integer of at least ${min}`;
}
