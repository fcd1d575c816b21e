/**
 * `npm run dev`: prepares the local stack on embedded defaults.
 * Today that is the demo model; the GPU worker, embedded S3 and edge join it as they land.
 */
import { resolve } from "node:path";
import { ensureDemoModel } from "./demo-model.ts";

const devDir = resolve(process.env.HYPENCODER_DEV_DIR ?? ".dev");
const log = (message: string) => process.stderr.write(`[dev] ${message}\n`);

const modelDir = await ensureDemoModel(devDir, log);
log(`demo model ready in ${modelDir} (tiny random checkpoint: scores are random)`);
log("try:");
log(`  echo '{"id":"q1","text":"package manager"}' > /tmp/q.jsonl`);
log(`  echo '{"id":"d1","text":"a tool to install software packages"}' > /tmp/d.jsonl`);
log(`  npx hypencoder score --model ${modelDir} --queries /tmp/q.jsonl --docs /tmp/d.jsonl`);
