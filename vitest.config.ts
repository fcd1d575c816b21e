import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import { ensureS3Env } from "./test/support/ensure-s3-env.ts";

// Real S3 (radosgw) for every project, started here if the environment names none (CI starts it first).
ensureS3Env(fileURLToPath(new URL(".", import.meta.url)));

// The edge's D1 migrations, applied by edge/test/apply-migrations.ts (the same files that
// `wrangler d1 migrations apply` runs), so tests run against the real schema.
const edgeMigrations = await readD1Migrations(fileURLToPath(new URL("./edge/migrations", import.meta.url)));

// One runner for the whole repository:
// - "node": the GPU worker, shared formats, the CLI and cross-cutting tests, in Node;
// - "edge": the Workers app, inside workerd via @cloudflare/vitest-pool-workers.
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
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              // workerd cannot read process.env: hand the real S3 (infra/s3, exported by ceph-start.sh)
              // and fixed test values for the routing secrets/pool to the Worker as bindings.
              bindings: {
                ...Object.fromEntries(
                  ["S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_BUCKET"].flatMap((k) =>
                    process.env[k] ? [[k, process.env[k]!]] : [],
                  ),
                ),
                WORKER_SIGNING_SECRET: "edge-test-signing-secret",
                // Nothing listens on these ports: unit tests inject a fake fetcher, and app-level tests check
                // that unreachable workers give partial answers. (Unresolvable hostnames would also do,
                // but make workerd log a DNS stack trace per attempt.)
                GPU_WORKERS: "http://127.0.0.1:9,http://127.0.0.1:10,http://127.0.0.1:11",
                TEST_MIGRATIONS: edgeMigrations,
                ADMIN_TOKEN: "edge-test-admin-token",
              },
            },
          }),
        ],
        test: {
          name: "edge",
          include: ["edge/**/*.test.ts"],
          setupFiles: ["./edge/test/apply-migrations.ts"],
        },
      },
    ],
  },
});
