/**
 * Makes `npm test` self-sufficient: when no S3 is configured (S3_ENDPOINT unset), installs and starts
 * the local radosgw (infra/s3/) before any test project starts, and exports its settings to every
 * test process — the Node project and the workerd (edge) project alike. CI starts it in .ci/run first;
 * this then does nothing.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseExports } from "./shell-exports.ts";

export function ensureS3Env(repo: string): void {
  if (process.env.S3_ENDPOINT) return;
  const dir = mkdtempSync(join(tmpdir(), "hyp-s3-env-"));
  try {
    // Output goes to files, not pipes: the daemons ceph-start.sh leaves running would hold a pipe open.
    const lock = `${process.env.CEPH_DIR ?? "/tmp/hypencoder-ceph"}.lock`;
    const script = [
      `bash infra/s3/ceph-install.sh >"${dir}/install.log" 2>&1`,
      `flock -o "${lock}" bash infra/s3/ceph-start.sh >"${dir}/env" 2>"${dir}/start.log"`,
    ].join(" && ");
    try {
      execFileSync("bash", ["-c", script], { cwd: repo, stdio: "ignore", timeout: 300_000 });
    } catch {
      const log = ["install.log", "start.log"].map((f) => safeRead(join(dir, f))).join("\n");
      throw new Error(`could not start the local S3 (infra/s3/ceph-start.sh):\n${log.slice(-4000)}`);
    }
    Object.assign(process.env, parseExports(readFileSync(join(dir, "env"), "utf8")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
