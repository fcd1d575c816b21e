/**
 * The GPU worker process: config from the environment → model runtime → index backend → HTTP app.
 * SIGTERM/SIGINT drain it: health turns 503, new requests are refused, in-flight ones get
 * SHUTDOWN_GRACE_MS to finish, then the index side and the runtime are closed.
 */
import { HypencoderRuntime } from "./model/runtime/runtime.ts";
import { createIndexBackend } from "./index/index-backend-impl.ts";
import { createService } from "./service/app.ts";
import { ConfigError, describeConfig, loadConfig } from "./service/config.ts";
import { listen } from "./service/http-server.ts";
import { warmUp } from "./service/warm-up.ts";
import { createLogger } from "./service/logger.ts";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  const logger = createLogger({ level: config.logLevel });
  logger.info({ config: describeConfig(config) }, "starting gpu worker");
  if (config.signingSecrets.length === 0) logger.warn("HYP_INSECURE_DEV: requests are NOT authenticated; never use this outside a developer machine");

  const runtime = await HypencoderRuntime.load(config.modelDir, { device: config.device, scoreBatching: config.scoreBatching });
  await warmUp(runtime);
  logger.info({ devices: Object.fromEntries(runtime.devices), model: runtime.modelDir }, "model loaded");
  const backend = await createIndexBackend({
    runtime,
    storeLocation: config.indexStore,
    cacheDir: config.shardCacheDir,
    cacheBudgetBytes: config.shardCacheBytes,
    preload: config.preload,
    buildLimits: config.buildLimits,
    memoryBudgetBytes: config.workerMemoryBudgetBytes,
    logger,
  });
  const service = createService({ runtime, backend, logger, settings: config });
  if (backend.metrics) service.metrics.source("index", "Index-side statistics (cache bytes, shards loaded, …)", () => backend.metrics!());

  const server = await listen(service.app.fetch, { port: config.port, host: config.host });
  logger.info({ url: server.url }, "listening");

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, "shutting down");
    service.drain();
    try {
      await server.close(config.shutdownGraceMs);
      await backend.close();
      await runtime.close();
      logger.info("stopped");
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, "error during shutdown");
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((error: unknown) => {
  process.stderr.write(`gpu worker failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
