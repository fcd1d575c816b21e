/**
 * Signatures already used on this worker, for routes that write (builds): a signed request is valid
 * for ±window seconds, so a captured one could be sent again until then; remembering each
 * signature until its timestamp leaves the window refuses the second use. Bounded: when every
 * entry is still live, new requests are refused (503) rather than old signatures forgotten.
 */
export type ClaimResult = "fresh" | "replayed" | "full";

export class ReplayCache {
  /** signature → when it leaves the window (ms since the epoch). Insertion order ≈ expiry order. */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly options: { maxEntries: number; windowSeconds: number },
  ) {
    if (options.maxEntries < 1) throw new RangeError("ReplayCache needs maxEntries >= 1");
  }

  get size(): number {
    return this.seen.size;
  }

  /** Records a signature (its timestamp in unix seconds); "replayed" if it was already used. */
  claim(signature: string, timestampSeconds: number, nowMs = Date.now()): ClaimResult {
    const expires = this.seen.get(signature);
    if (expires !== undefined && expires > nowMs) return "replayed";
    if (this.seen.size >= this.options.maxEntries) this.prune(nowMs);
    if (this.seen.size >= this.options.maxEntries) return "full";
    this.seen.set(signature, (timestampSeconds + this.options.windowSeconds) * 1000);
    return "fresh";
  }

  private prune(nowMs: number): void {
    for (const [signature, expires] of this.seen) if (expires <= nowMs) this.seen.delete(signature);
  }
}
