// Starts a TypeScript entry point in a child node process with:
// - the tsx loader (the project runs its TypeScript sources directly; no build step);
// - GLIBC_TUNABLES that stop glibc from returning large onnxruntime buffers to the OS after every
//   call (mmap_max=0, a huge trim threshold): measured here, about 3x faster on large matmuls.
//   glibc reads the variable only at process start, hence the child process.
// Signals are forwarded and the child's exit status becomes ours; a child ended by a signal makes us
// exit 128+n, as a shell reports it (re-raising the signal on ourselves would only reach our own
// forwarding handler, and we would exit 0).
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";

export const GLIBC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184";
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export function launchTs(entry, args) {
  const env = { ...process.env, GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? GLIBC_TUNABLES };
  const child = spawn(process.execPath, ["--import", "tsx", resolve(root, entry), ...args], {
    stdio: "inherit",
    env,
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => child.kill(signal));
  }
  child.on("exit", (code, signal) => {
    process.exit(signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1));
  });
}
