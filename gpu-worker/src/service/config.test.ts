import { describe, expect, it } from "vitest";
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
      batchMax: 16,
      batchWaitMs: 2,
      requestTimeoutMs: 30_000,
      preload: [],
      insecureDev: false,
    });
  });

  it("parses numbers, flags and the preload list", () => {
    const config = loadConfig({ ...BASE, PORT: "9000", QUEUE_MAX: "8", CONCURRENCY: "4", S3_FORCE_PATH_STYLE: "1", PRELOAD_INDEXES: "acme/docs@3, beta/x-y@12" });
    expect(config).toMatchObject({ port: 9000, queueMax: 8, concurrency: 4, s3: { forcePathStyle: true } });
    expect(loadConfig({ ...BASE, QUEUE_MAX: "8" }).concurrency).toBe(8);
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
