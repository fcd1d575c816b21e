/**
 * Supervision for `npm run dev`, as a process manager does it: a stack process that exits on its own
 * is logged by name with its exit code or signal, and started again after a backoff (1 s, doubling
 * to 30 s). Only Ctrl-C, or one process crashing `maxCrashes` times within `windowMs`, stops the
 * stack — with a message that says which process and why.
 */
import type { ManagedProcess } from "./processes.ts";

export interface SupervisorOptions {
  log: (message: string) => void;
  /** Crashes of one process within `windowMs` after which the whole stack stops. */
  maxCrashes: number;
  windowMs: number;
  /** Delay before the first restart, doubled for each further crash in the window, up to `maxBackoffMs`. */
  firstBackoffMs?: number;
  maxBackoffMs?: number;
}

export const DEFAULT_MAX_CRASHES = 5;
export const DEFAULT_CRASH_WINDOW_MS = 60_000;
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 30_000;

/** "exited with code 1" or "was killed by SIGKILL", from ManagedProcess.exited. */
export function describeExit(status: number | string): string {
  return typeof status === "number" ? `exited with code ${status}` : `was killed by ${status}`;
}

export class Supervisor {
  private stopping = false;
  private resolveGaveUp!: (reason: string) => void;
  /** Resolves, with the reason, when a process crashed too often and the stack should stop. */
  readonly gaveUp = new Promise<string>((resolve) => (this.resolveGaveUp = resolve));

  constructor(private readonly options: SupervisorOptions) {}

  /** Follows `process`; when it exits on its own, `restart` starts its replacement (resolving once it is ready). */
  watch(name: string, process: ManagedProcess, restart: () => Promise<ManagedProcess>): void {
    const { log, maxCrashes, windowMs } = this.options;
    const firstBackoff = this.options.firstBackoffMs ?? FIRST_BACKOFF_MS;
    const maxBackoff = this.options.maxBackoffMs ?? MAX_BACKOFF_MS;
    const crashes: number[] = [];

    const crashed = async (what: string): Promise<void> => {
      if (this.stopping) return;
      const now = Date.now();
      crashes.push(now);
      while (crashes[0]! <= now - windowMs) crashes.shift();
      log(`${name} ${what}`);
      if (crashes.length >= maxCrashes) {
        this.stopping = true;
        this.resolveGaveUp(`${name} crashed ${crashes.length} times within ${windowMs / 1000} s (last: ${what})`);
        return;
      }
      const delay = Math.min(maxBackoff, firstBackoff * 2 ** (crashes.length - 1));
      log(`restarting ${name} in ${delay} ms (crash ${crashes.length} of ${maxCrashes} allowed within ${windowMs / 1000} s)`);
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (this.stopping) return;
      let next: ManagedProcess;
      try {
        next = await restart();
      } catch (error) {
        return crashed(`did not start again: ${(error as Error).message}`);
      }
      if (this.stopping) return void (await next.stop());
      log(`${name} restarted (pid ${next.child.pid})`);
      follow(next);
    };
    const follow = (current: ManagedProcess): void => {
      void current.exited.then((status) => crashed(describeExit(status)));
    };
    follow(process);
  }

  /** Ctrl-C: exits from now on are the shutdown's, not crashes. */
  stop(): void {
    this.stopping = true;
  }
}
