/**
 * `npm run dev` supervision with real processes: the launcher's exit status for a child ended by a
 * signal, and the supervisor's restart, logging and give-up on repeated crashes.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { constants, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ManagedProcess, startProcess, stopAll } from "../infra/dev/processes.ts";
import { Supervisor } from "../infra/dev/supervisor.ts";

const RUN_TS = resolve(import.meta.dirname, "../bin/run-ts.mjs");
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hyp-dev-supervision-"));
});
afterAll(async () => {
  await stopAll(2_000);
  await rm(dir, { recursive: true, force: true });
});

/** Runs `source` as a TypeScript entry point through bin/run-ts.mjs; resolves with the launcher's exit. */
async function launch(name: string, source: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const entry = join(dir, `${name}.ts`);
  await writeFile(entry, source);
  const launcher = spawn(process.execPath, [RUN_TS, entry], { stdio: "ignore" });
  return new Promise((done) => launcher.once("exit", (code, signal) => done({ code, signal })));
}

describe("bin/launch.mjs", () => {
  it.each(["SIGTERM", "SIGINT", "SIGHUP", "SIGKILL"] as const)("exits 128+n when its child is killed by %s", async (signal) => {
    const exit = await launch(`killed-${signal}`, `process.kill(process.pid, "${signal}"); setInterval(() => {}, 1000);\n`);
    expect(exit).toEqual({ code: 128 + constants.signals[signal], signal: null });
  });

  it("passes a child's exit code through", async () => {
    expect(await launch("exit-7", "process.exit(7);\n")).toEqual({ code: 7, signal: null });
  });
});

/** A node process that exits with `code` on its first `crashRuns` runs (counted in a file), then stays up. */
function flaky(name: string, crashRuns: number, code: number): () => Promise<ManagedProcess> {
  const counter = join(dir, `${name}.runs`);
  const script = `
    const fs = require("node:fs");
    const runs = fs.existsSync(${JSON.stringify(counter)}) ? Number(fs.readFileSync(${JSON.stringify(counter)}, "utf8")) : 0;
    fs.writeFileSync(${JSON.stringify(counter)}, String(runs + 1));
    console.log("run " + (runs + 1));
    if (runs < ${crashRuns}) setTimeout(() => process.exit(${code}), 50);
    else setInterval(() => {}, 1000);
  `;
  return async () => startProcess({ name, command: process.execPath, args: ["-e", script], onLine: () => {} });
}

function collectingLog(): { lines: string[]; log: (line: string) => void; waitFor: (pattern: RegExp, ms?: number) => Promise<void> } {
  const lines: string[] = [];
  return {
    lines,
    log: (line) => lines.push(line),
    waitFor: async (pattern, ms = 20_000) => {
      const deadline = Date.now() + ms;
      while (!lines.some((l) => pattern.test(l))) {
        if (Date.now() > deadline) throw new Error(`no log line matched ${pattern}; got:\n${lines.join("\n")}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

describe("Supervisor (infra/dev/supervisor.ts)", () => {
  it("restarts a crashed process after a backoff, and logs its name and exit code", async () => {
    const { lines, log, waitFor } = collectingLog();
    const supervisor = new Supervisor({ log, maxCrashes: 3, windowMs: 60_000, firstBackoffMs: 100 });
    const start = flaky("worker-0", 1, 3);
    const first = await start();
    let restarted: ManagedProcess | undefined;
    supervisor.watch("worker-0", first, async () => (restarted = await start()));
    await waitFor(/^worker-0 restarted \(pid \d+\)$/);
    expect(lines).toEqual([
      "worker-0 exited with code 3",
      "restarting worker-0 in 100 ms (crash 1 of 3 allowed within 60 s)",
      `worker-0 restarted (pid ${restarted!.child.pid})`,
    ]);
    expect(restarted!.child.exitCode).toBeNull();
    supervisor.stop();
    await restarted!.stop();
  });

  it("logs a process killed by a signal by its signal", async () => {
    const { lines, log, waitFor } = collectingLog();
    const supervisor = new Supervisor({ log, maxCrashes: 3, windowMs: 60_000, firstBackoffMs: 50 });
    const start = flaky("edge", 0, 0);
    const first = await start();
    let restarted: ManagedProcess | undefined;
    supervisor.watch("edge", first, async () => (restarted = await start()));
    first.kill("SIGKILL");
    await waitFor(/^edge restarted/);
    expect(lines[0]).toBe("edge was killed by SIGKILL");
    supervisor.stop();
    await restarted!.stop();
  });

  it("gives up after repeated crashes within the window, with a message naming the process", async () => {
    const { lines, log } = collectingLog();
    const supervisor = new Supervisor({ log, maxCrashes: 3, windowMs: 60_000, firstBackoffMs: 50, maxBackoffMs: 100 });
    const start = flaky("worker-1", 1_000, 1);
    supervisor.watch("worker-1", await start(), start);
    const reason = await supervisor.gaveUp;
    expect(reason).toBe("worker-1 crashed 3 times within 60 s (last: exited with code 1)");
    expect(lines.filter((l) => l === "worker-1 exited with code 1")).toHaveLength(3);
    // Backoff doubles, capped: 50 ms, then 100 ms.
    expect(lines.filter((l) => l.startsWith("restarting"))).toEqual([
      "restarting worker-1 in 50 ms (crash 1 of 3 allowed within 60 s)",
      "restarting worker-1 in 100 ms (crash 2 of 3 allowed within 60 s)",
    ]);
  });

  it("after stop() (Ctrl-C), an exit is not a crash and nothing restarts", async () => {
    const { lines, log } = collectingLog();
    const supervisor = new Supervisor({ log, maxCrashes: 3, windowMs: 60_000, firstBackoffMs: 50 });
    const start = flaky("worker-2", 0, 0);
    const first = await start();
    let restarts = 0;
    supervisor.watch("worker-2", first, async () => (restarts++, start()));
    supervisor.stop();
    await first.stop();
    await new Promise((r) => setTimeout(r, 200));
    expect({ lines, restarts }).toEqual({ lines: [], restarts: 0 });
  });
});
