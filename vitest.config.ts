import { defineConfig } from "vitest/config";

// One runner for the whole repository. Node-side code (gpu-worker, shared, CLI, end-to-end)
// runs in the "node" project; the edge runs inside workerd via @cloudflare/vitest-pool-workers.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          environment: "node",
          include: ["shared/**/*.test.ts", "gpu-worker/**/*.test.ts", "test/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          pool: "forks",
        },
      },
    ],
  },
});
