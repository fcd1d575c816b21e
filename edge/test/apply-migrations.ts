/** Vitest setup (edge project): applies edge/migrations to the test D1 before each test file. */
import { applyD1Migrations, env } from "cloudflare:test";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
