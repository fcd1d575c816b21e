/**
 * Per-tenant cap on searches in flight: one Durable Object per tenant (idFromName(tenantId)) holds
 * the leases of that tenant's running searches, in cost units (search-slots.ts). A Durable Object
 * for the same reason as RateLimiter: a tenant's requests land on many isolates, and one
 * single-threaded object counts them exactly.
 *
 * Leases, not a bare counter: an edge isolate can die between acquire and release, and its slot
 * must not leak. Each lease expires on its own after `leaseMs` (longer than any search can run),
 * so a lost release costs at most that long. In memory, like RateLimiter: an evicted object starts
 * empty, which fails open, the right failure for a limiter.
 */
import { DurableObject } from "cloudflare:workers";

export interface SlotDecision {
  allowed: boolean;
  /** The lease to release when the search ends (when allowed). */
  leaseId?: string;
  /** Units held by this tenant after the decision. */
  inUse: number;
  limit: number;
}

export class ConcurrencyLimiter extends DurableObject {
  private readonly leases = new Map<string, { units: number; expiresAt: number }>();

  /** Takes `units` of `limit` for at most `leaseMs`; refused (and nothing taken) when they do not fit. */
  acquire(units: number, limit: number, leaseMs: number, now: number = Date.now()): SlotDecision {
    let inUse = 0;
    for (const [id, lease] of this.leases) {
      if (lease.expiresAt <= now) this.leases.delete(id);
      else inUse += lease.units;
    }
    if (inUse + units > limit) return { allowed: false, inUse, limit };
    const leaseId = crypto.randomUUID();
    this.leases.set(leaseId, { units, expiresAt: now + leaseMs });
    return { allowed: true, leaseId, inUse: inUse + units, limit };
  }

  release(leaseId: string): void {
    this.leases.delete(leaseId);
  }
}
