/**
 * STUB (H3, branch e10w): the interface of H4's maintenance (branch e10m), so the IndexWriter's
 * alarm compiles and runs before it is merged. H4's real file replaces this one at the merge.
 */
import type { EdgeBindings } from "../env.ts";
import type { Fetcher } from "../routing/worker-client.ts";

export interface MaintenanceContext {
  env: EdgeBindings;
  storage: DurableObjectStorage;
  tenant: string;
  index: string;
  fetcher?: Fetcher;
  now?: () => number;
}

/** Compaction check/dispatch/poll/flip and GC; returns when the next alarm should fire (ms epoch) or null. */
export async function runMaintenance(_ctx: MaintenanceContext): Promise<number | null> {
  return null;
}

/** After the soft delete: cancel builds, sweep everything (twice), purge. Returns next alarm or null when done. */
export async function destroyIndex(_ctx: MaintenanceContext): Promise<number | null> {
  return null;
}
