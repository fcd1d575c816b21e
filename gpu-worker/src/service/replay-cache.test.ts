import { describe, expect, it } from "vitest";
import { ReplayCache } from "./replay-cache.ts";

describe("ReplayCache", () => {
  it("refuses a signature's second use until it leaves the window, and stays bounded", () => {
    const cache = new ReplayCache({ maxEntries: 2, windowSeconds: 60 });
    const t = 1_750_000_000;
    expect(cache.claim("a", t, t * 1000)).toBe("fresh");
    expect(cache.claim("a", t, t * 1000 + 59_000)).toBe("replayed");
    expect(cache.claim("b", t, t * 1000)).toBe("fresh");
    expect(cache.claim("c", t, t * 1000)).toBe("full");
    // Once a and b are out of the window they are forgotten (and would be refused as expired anyway).
    expect(cache.claim("c", t + 61, (t + 61) * 1000)).toBe("fresh");
    expect(cache.size).toBe(1);
  });
});
