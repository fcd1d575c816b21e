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
});
