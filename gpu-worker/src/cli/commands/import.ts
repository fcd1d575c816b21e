import { importCheckpoint } from "../../model/import-checkpoint.ts";
import { parse, required, UsageError } from "../args.ts";
import { note } from "../progress.ts";

const USAGE = "hypencoder import <checkpoint-dir> --out <model-dir> [--base-config <bert config.json>] [--force]";

export async function importCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    { out: { type: "string" }, "base-config": { type: "string" }, force: { type: "boolean" } },
    USAGE,
  );
  if (positionals.length !== 1) throw new UsageError(`expected one checkpoint directory\nusage: ${USAGE}`);
  const baseConfig = values["base-config"];
  await importCheckpoint(positionals[0]!, required(values, "out", USAGE), {
    ...(baseConfig ? { baseConfigPath: baseConfig } : {}),
    force: values.force === true,
    onProgress: note,
  });
}
