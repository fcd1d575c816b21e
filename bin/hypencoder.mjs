#!/usr/bin/env node
// The `hypencoder` command (npx hypencoder …): see gpu-worker/src/cli/main.ts.
import { launchTs } from "./launch.mjs";

launchTs("gpu-worker/src/cli/main.ts", process.argv.slice(2));
