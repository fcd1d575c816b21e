/**
 * The whole product as real local processes, for tests that drive it from outside: a fresh radosgw
 * bucket (test/support/s3.ts), the tiny random model (infra/dev/demo-model.ts) and `startStack`
 * (infra/dev/stack.ts: N GPU worker processes + the edge under `wrangler dev` with local D1), all in
 * one temporary directory. Adds what such tests need around startStack: restarting one worker on its
 * port, restarting the whole stack on the same state, and quiet output.
 *
 *   const product = await ProductStack.start({ prefix: "e2e", workers: 3 });
 *   const admin = product.admin();
 *   ...
 *   await product.close();
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureTinyModel } from "../../infra/dev/demo-model.ts";
import { stopAll } from "../../infra/dev/processes.ts";
import { PublicApi } from "../../infra/dev/public-api.ts";
import { restartWorker, type RunningStack, type RunningWorker, type S3Settings, type StackOptions, startStack } from "../../infra/dev/stack.ts";
import { testS3Settings } from "./s3.ts";

export const VERBOSE = !!process.env.INTEGRATION_VERBOSE;

/** A line sink that prints `[name] line` only with INTEGRATION_VERBOSE=1. */
export const quietLines = (name: string) => (line: string) => {
  if (VERBOSE) process.stderr.write(`[${name}] ${line}\n`);
};

/** Logs a test's own observations (measured recall, timings) only with INTEGRATION_VERBOSE=1. */
export function note(message: string): void {
  if (VERBOSE) process.stderr.write(`[test] ${message}\n`);
}

export interface ProductStackOptions {
  /** Names the temporary directory and the bucket. */
  prefix: string;
  workers: number;
  edgeVars?: Record<string, string>;
  workerEnv?: Record<string, string>;
  signingSecret?: string;
  adminToken?: string;
  /** Where the stack's processes reach S3 (a fault proxy in front of radosgw: test/support/tcp-proxy.ts); radosgw itself by default. */
  s3Endpoint?: string;
  /** An imported model directory to serve (the tiny random model by default). */
  modelDir?: string;
  /** The workers' ports (free ones by default): a test that puts a proxy in front of a worker picks them first. */
  workerPorts?: number[];
}

export class ProductStack {
  private constructor(
    readonly dir: string,
    readonly modelDir: string,
    readonly s3: S3Settings,
    private running: RunningStack,
  ) {}

  static async start(options: ProductStackOptions): Promise<ProductStack> {
    // The SDK's "use Node 22" notice, once per process: noise in test output, not a test result.
    if (!VERBOSE) process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
    const dir = await mkdtemp(join(tmpdir(), `${options.prefix}-`));
    try {
      const [radosgw, modelDir] = await Promise.all([testS3Settings(options.prefix), options.modelDir ?? ensureTinyModel(join(dir, "model"), quietLines("model"))]);
      const s3 = options.s3Endpoint ? { ...radosgw, endpoint: options.s3Endpoint } : radosgw;
      const stackOptions: StackOptions = {
        dir,
        modelDir,
        s3,
        workers: options.workers,
        signingSecret: options.signingSecret ?? "e2e-signing-secret",
        adminToken: options.adminToken ?? "e2e-admin-token",
        ...(options.edgeVars ? { edgeVars: options.edgeVars } : {}),
        ...(options.workerEnv ? { workerEnv: options.workerEnv } : {}),
        ...(options.workerPorts ? { workerPorts: options.workerPorts } : {}),
        onLine: quietLines,
      };
      const running = await startStack(stackOptions);
      // Pin the ports that were picked, so restarts come back at the same addresses (the edge's
      // GPU_WORKERS list, and rendezvous placement, depend on the worker URLs).
      running.options.edgePort = portOf(running.edge.url);
      running.options.workerPorts = running.workers.map((w) => portOf(w.url));
      return new ProductStack(dir, modelDir, s3, running);
    } catch (error) {
      await stopAll(5_000);
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  get edgeUrl(): string {
    return this.running.edge.url;
  }

  get workers(): readonly RunningWorker[] {
    return this.running.workers;
  }

  get options(): StackOptions {
    return this.running.options;
  }

  /** The operator API. */
  admin(): PublicApi {
    return PublicApi.admin(this.edgeUrl, this.running.options.adminToken);
  }

  /** A tenant's client. */
  tenant(key: string): PublicApi {
    return new PublicApi(this.edgeUrl, key);
  }

  /** Whether worker `i`'s process is still running. */
  isAlive(i: number): boolean {
    const child = this.running.workers[i]!.process.child;
    return child.exitCode === null && child.signalCode === null;
  }

  /** Starts worker `i` again on the port, shard cache and settings it had (after it was killed). */
  async restartWorker(i: number): Promise<RunningWorker> {
    if (this.isAlive(i)) throw new Error(`worker-${i} is still running`);
    await this.running.workers[i]!.process.exited;
    return restartWorker(this.running, i);
  }

  /** Stops every process, then starts the stack again with the same directory, ports, secrets and bucket. */
  async restart(): Promise<void> {
    await stopAll(5_000);
    this.running = await startStack(this.running.options);
  }

  async close(): Promise<void> {
    await stopAll(5_000);
    await rm(this.dir, { recursive: true, force: true });
  }
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}
