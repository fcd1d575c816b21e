/** The trainer's own Python unit tests (gpu-worker/train/tests), run by Debian's interpreter inside `npm test`. */
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { PYTHON } from "./support/trainer.ts";

it("gpu-worker/train unit tests pass", { timeout: 110_000 }, async () => {
  const root = resolve(import.meta.dirname, "..");
  const { stderr } = await promisify(execFile)(PYTHON, ["-m", "unittest", "discover", "-s", "gpu-worker/train/tests"], { cwd: root }).catch(
    (error: { stderr: string }) => {
      throw new Error(`python unit tests failed:\n${error.stderr}`);
    },
  );
  expect(stderr).toMatch(/\nOK\s*$/);
  expect(Number(/Ran (\d+) tests/.exec(stderr)?.[1])).toBeGreaterThan(10);
});
