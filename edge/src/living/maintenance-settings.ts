/**
 * The [vars] that steer a living index's background maintenance (docs/DEPLOYMENT.md "Living index
 * maintenance"). Each is optional: absent or blank means its default; anything else must be an
 * integer in bounds (integerSetting throws, naming the setting).
 */
import { integerSetting } from "../integer-setting.ts";

export const MAINTENANCE_DEFAULTS = {
  /** Compact once the tail holds this many upserted documents. */
  COMPACT_TAIL_DOCS: 10_000,
  /** … or this many write batches (deletes only count here). */
  COMPACT_TAIL_BATCHES: 1_000,
  /** … or its oldest batch is this old (seconds). */
  COMPACT_TAIL_AGE_SECONDS: 300,
  /** A superseded version, and an expired upload, are deleted this long after (seconds). */
  GC_GRACE_SECONDS: 3_600,
  /** The sweeper looks for garbage this often (seconds). */
  GC_INTERVAL_SECONDS: 600,
} as const;

export type MaintenanceSettingName = keyof typeof MAINTENANCE_DEFAULTS;
/** The bindings read here (strings from [vars]); EdgeBindings gains them when wrangler.toml lists them. */
export type MaintenanceVars = Partial<Record<MaintenanceSettingName, string>>;

export interface MaintenanceSettings {
  compactTailDocs: number;
  compactTailBatches: number;
  compactTailAgeMs: number;
  gcGraceMs: number;
  gcIntervalMs: number;
}

export function maintenanceSettings(env: object): MaintenanceSettings {
  const vars = env as MaintenanceVars;
  const read = (name: MaintenanceSettingName, min: number) => integerSetting(name, vars[name], MAINTENANCE_DEFAULTS[name], { min });
  return {
    compactTailDocs: read("COMPACT_TAIL_DOCS", 1),
    compactTailBatches: read("COMPACT_TAIL_BATCHES", 1),
    compactTailAgeMs: read("COMPACT_TAIL_AGE_SECONDS", 1) * 1000,
    gcGraceMs: read("GC_GRACE_SECONDS", 0) * 1000,
    gcIntervalMs: read("GC_INTERVAL_SECONDS", 10) * 1000,
  };
}
