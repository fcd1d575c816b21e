import { describe, expect, it } from "vitest";
import { ServiceMetrics } from "./metrics.ts";

describe("ServiceMetrics", () => {
  it("exposes the process metrics on each service's own registry, several services in one process", async () => {
    const first = new ServiceMetrics();
    const second = new ServiceMetrics();
    for (const metrics of [first, second]) {
      const text = await metrics.text();
      expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
      expect(text).toMatch(/^nodejs_heap_size_used_bytes \d+/m);
      expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    }
  });

  it("exports the loaded-index gauges with their fixed names, read at scrape time", async () => {
    const metrics = new ServiceMetrics();
    let state = { loadedVersions: 2, loadedBytes: 4096 };
    metrics.loadedIndexMemory(() => state);
    expect(await metrics.text()).toMatch(/^hypencoder_loaded_versions 2$/m);
    state = { loadedVersions: 1, loadedBytes: 1024 };
    const text = await metrics.text();
    expect(text).toMatch(/^hypencoder_loaded_versions 1$/m);
    expect(text).toMatch(/^hypencoder_loaded_bytes 1024$/m);
  });
});
