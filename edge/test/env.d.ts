/** Bindings the edge tests see through `env` from "cloudflare:test" (set in vitest.config.ts). */
import type { D1Migration } from "cloudflare:test";
import type { EdgeBindings } from "../src/env.ts";

declare global {
  namespace Cloudflare {
    interface Env extends EdgeBindings {
      TEST_MIGRATIONS: D1Migration[];
    }
  }
}
