#!/usr/bin/env node
// Runs a TypeScript file of this repository with the same launcher as the CLI: node run-ts.mjs <file.ts> [args…]
import { launchTs } from "./launch.mjs";

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error("usage: run-ts.mjs <file.ts> [args…]");
  process.exit(2);
}
launchTs(entry, args);
