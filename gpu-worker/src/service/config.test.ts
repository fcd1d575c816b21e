import { totalmem } from "node:os";
import { describe, expect, it } from "vitest";
import { RERANK_BODY_LIMIT_BYTES } from "../../../edge/src/query-model/request.ts";
import { DEFAULT_WORKER_TIMEOUT_MS, WORKER_FRAME_LIMIT_BYTES } from "../../../shared/api/worker-api.ts";
import { ConfigError, describeConfig, loadConfig } from "./config.ts";

const BASE = { MODEL_DIR: "/models/h6", HYP_SIGNING_SECRETS: "k-new, k-old" };

describe("loadConfig", () => {
  it("applies defaults", () => {
    const config = loadConfig(BASE);
    expect(config).toMatchObject({
      port: 8081,
      host: "127.0.0.1",
      signingSecrets: ["k-new", "k-old"],
      queueMax: 64,
      scoreBatching: "auto",
      batchMax: 16,
      batchWaitMs: 2,
      requestTimeoutMs: 20_000,
      preload: [],
      insecureDev: false,
      maxBodyBytes: 8 * 2 ** 20 + 64 * 1024,
      maxPendingBodyBytes: 128 * 2 ** 20,
      maxAnswerBytes: 60 * 2 ** 20,
      buildLimits: { maxInputBytes: 64 * 2 ** 30, maxGzipRatio: 200, timeoutMs: 12 * 3600_000, textBytesInFlight: 256 * 2 ** 20 },
    });
  });

  it("sizes its limits to the edge: bodies it sends fit, and the worker gives up before the edge does", () => {
    const config = loadConfig(BASE);
    expect(config.maxBodyBytes).toBeGreaterThan(RERANK_BODY_LIMIT_BYTES);
    expect(config.maxAnswerBytes).toBeLessThan(WORKER_FRAME_LIMIT_BYTES);
    expect(config.requestTimeoutMs).toBeLessThan(DEFAULT_WORKER_TIMEOUT_MS);
  });

  it("reads the body, answer and build limits", () => {
    const config = loadConfig({
      ...BASE,
      MAX_BODY_BYTES: "2048",
      MAX_PENDING_BODY_BYTES: "4096",
      MAX_ANSWER_BYTES: "8192",
      BUILD_MAX_INPUT_BYTES: "1000000",
      BUILD_MAX_GZIP_RATIO: "50",
      BUILD_TIMEOUT_MS: "60000",
      BUILD_TEXT_BYTES_IN_FLIGHT: "65536",
    });
    expect(config).toMatchObject({
      maxBodyBytes: 2048,
      maxPendingBodyBytes: 4096,
      maxAnswerBytes: 8192,
      buildLimits: { maxInputBytes: 1_000_000, maxGzipRatio: 50, timeoutMs: 60_000, textBytesInFlight: 65_536 },
    });
    expect(() => loadConfig({ ...BASE, MAX_BODY_BYTES: "8192", MAX_PENDING_BODY_BYTES: "4096" })).toThrow(/MAX_PENDING_BODY_BYTES/);
  });

  it("reads the worker memory budget: half of the machine's memory by default, a positive integer otherwise", () => {
    expect(loadConfig(BASE).workerMemoryBudgetBytes).toBe(Math.floor(totalmem() / 2));
    expect(loadConfig({ ...BASE, WORKER_MEMORY_BUDGET_BYTES: "1048576" }).workerMemoryBudgetBytes).toBe(1_048_576);
    for (const bad of ["0", "-5", "1.5", "lots"]) expect(() => loadConfig({ ...BASE, WORKER_MEMORY_BUDGET_BYTES: bad })).toThrow(/WORKER_MEMORY_BUDGET_BYTES/);
  });

  it("parses numbers, flags and the preload list", () => {
    const config = loadConfig({ ...BASE, PORT: "9000", QUEUE_MAX: "8", CONCURRENCY: "4", S3_FORCE_PATH_STYLE: "1", PRELOAD_INDEXES: "acme/docs@3, beta/x-y@12" });
    expect(config).toMatchObject({ port: 9000, queueMax: 8, concurrency: 4, s3: { forcePathStyle: true } });
    expect(loadConfig({ ...BASE, QUEUE_MAX: "8" }).concurrency).toBe(8);
    expect(loadConfig({ ...BASE, SCORE_BATCHING: "1" }).scoreBatching).toBe(true);
    expect(loadConfig({ ...BASE, SCORE_BATCHING: "false" }).scoreBatching).toBe(false);
    expect(() => loadConfig({ ...BASE, SCORE_BATCHING: "sometimes" })).toThrow(/SCORE_BATCHING/);
    expect(() => loadConfig({ ...BASE, QUEUE_MAX: "8", CONCURRENCY: "9" })).toThrow(/CONCURRENCY/);
    expect(config.preload).toEqual([
      { tenant: "acme", index: "docs", version: 3 },
      { tenant: "beta", index: "x-y", version: 12 },
    ]);
  });

  it("refuses to start without signing secrets unless in insecure dev mode on loopback", () => {
    expect(() => loadConfig({ MODEL_DIR: "/m" })).toThrow(/HYP_SIGNING_SECRETS is required/);
    expect(() => loadConfig({ MODEL_DIR: "/m", HYP_SIGNING_SECRETS: " , " })).toThrow(ConfigError);
    expect(loadConfig({ MODEL_DIR: "/m", HYP_INSECURE_DEV: "1" }).insecureDev).toBe(true);
    expect(() => loadConfig({ MODEL_DIR: "/m", HYP_INSECURE_DEV: "1", HOST: "0.0.0.0" })).toThrow(/loopback/);
  });

  it("lists every invalid setting", () => {
    const error = (() => {
      try {
        loadConfig({ HYP_SIGNING_SECRETS: "k", PORT: "http", QUEUE_MAX: "0", PRELOAD_INDEXES: "acme/docs" });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    for (const name of ["MODEL_DIR", "PORT", "QUEUE_MAX", "PRELOAD_INDEXES"]) expect(error!.message).toContain(name);
  });

  it("never shows secrets in the loggable view", () => {
    const text = JSON.stringify(describeConfig(loadConfig(BASE)));
    expect(text).not.toContain("k-new");
    expect(text).toContain("2 configured");
  });
});
