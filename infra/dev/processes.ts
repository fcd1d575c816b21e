/**
 * Child processes of the dev stack (and of end-to-end tests): each runs in its own process group,
 * its output is prefixed with its name, and `stopAll` ends every group — so Ctrl-C leaves no orphans
 * (wrangler and the worker start grandchildren of their own).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  exited: Promise<number | string>;
  /** Signals the whole process group (the launcher and the real server it starts). */
  kill(signal: NodeJS.Signals): void;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where output lines go; defaults to stderr with a "[name]" prefix. */
  onLine?: (line: string) => void;
}

const running = new Set<ManagedProcess>();

export function startProcess(options: StartOptions): ManagedProcess {
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group, so stop() reaches its children too
  });
  const onLine = options.onLine ?? ((line: string) => process.stderr.write(`[${options.name}] ${line}\n`));
  for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on("line", onLine);
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
  const managed: ManagedProcess = {
    name: options.name,
    child,
    exited,
    kill: (signal) => killGroup(child, signal),
    stop: async (signal = "SIGTERM", graceMs = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      killGroup(child, signal);
      const timer = setTimeout(() => killGroup(child, "SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
      // Grandchildren that outlived their parent still get the group signal.
      killGroup(child, "SIGKILL");
    },
  };
  running.add(managed);
  void exited.then(() => running.delete(managed));
  return managed;
}

/** Stops every process started here, newest first. */
export async function stopAll(graceMs = 10_000): Promise<void> {
  await Promise.all([...running].reverse().map((p) => p.stop("SIGTERM", graceMs)));
}

/** Polls `url` until it answers with a status below 500, or throws after `timeoutMs`. */
export async function waitForHttp(url: string, timeoutMs: number, process?: ManagedProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = "no answer";
  let exited = false;
  void process?.exited.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${process!.name} exited before ${url} answered`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (response.status < 500) return;
      lastError = `status ${response.status}`;
    } catch (error) {
      lastError = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms (${lastError})`);
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** A TCP port that was free a moment ago, for a child process to listen on. */
export async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
