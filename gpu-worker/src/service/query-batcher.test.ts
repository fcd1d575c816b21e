import { describe, expect, it, vi } from "vitest";
import { type QueryEncoder, QueryBatcher } from "./query-batcher.ts";

/** A fake prepared q-net: it holds the text's length, so results can be matched to queries. */
interface FakeQNet {
  length: number;
  released: number;
  release(): Promise<void>;
}

/** A fake encoder; every q-net it hands out is in `made`, to check that each is released exactly as expected. */
function fakeEncoder(delayMs = 5) {
  const calls: Array<{ texts: string[]; maxLength?: number }> = [];
  const made: FakeQNet[] = [];
  let release: (() => void) | undefined;
  const encoder: QueryEncoder<FakeQNet> & { calls: typeof calls; made: FakeQNet[]; hold(): void; unhold(): void } = {
    calls,
    made,
    hold() {
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      release = open;
      (encoder as { gate?: Promise<void> }).gate = gate;
    },
    unhold() {
      release?.();
    },
    async prepareQueries(texts, options) {
      calls.push({ texts: [...texts], maxLength: options.maxLength });
      await (encoder as { gate?: Promise<void> }).gate;
      await new Promise((r) => setTimeout(r, delayMs));
      if (options.maxLength === 999) throw new RangeError("max length too large");
      return texts.map((t) => {
        const qnet: FakeQNet = {
          length: t.length,
          released: 0,
          async release() {
            qnet.released++;
          },
        };
        made.push(qnet);
        return qnet;
      });
    },
  };
  return encoder;
}

const lengthOf = (q: FakeQNet) => q.length;

describe("QueryBatcher", () => {
  it("groups concurrent queries into one encoder call and returns each its own q-net", async () => {
    const encoder = fakeEncoder();
    const sizes: number[] = [];
    const batcher = new QueryBatcher(encoder, { batchMax: 16, waitMs: 10, onBatch: (n) => sizes.push(n) });
    const texts = ["a", "bb", "ccc", "dddd", "eeeee"];
    const qnets = await Promise.all(texts.map((t) => batcher.encode(t)));
    expect(qnets.map(lengthOf)).toEqual([1, 2, 3, 4, 5]);
    expect(encoder.calls).toHaveLength(1);
    expect(sizes).toEqual([5]);
  });

  it("splits at batchMax and keeps filling while the encoder is busy", async () => {
    const encoder = fakeEncoder();
    encoder.hold();
    const batcher = new QueryBatcher(encoder, { batchMax: 4, waitMs: 0 });
    const first = batcher.encode("x"); // runs alone at once (waitMs 0)
    await new Promise((r) => setTimeout(r, 5));
    const rest = Array.from({ length: 6 }, (_, i) => batcher.encode("y".repeat(i + 1)));
    expect(batcher.pending).toBe(6);
    encoder.unhold();
    await Promise.all([first, ...rest]);
    expect(encoder.calls.map((c) => c.texts.length)).toEqual([1, 4, 2]);
  });

  it("keeps different token limits apart and fails only the batch whose limit the model refuses", async () => {
    const encoder = fakeEncoder();
    const batcher = new QueryBatcher(encoder, { batchMax: 8, waitMs: 5, maxRunning: 2 });
    const ok = [batcher.encode("a", 32), batcher.encode("b", 32), batcher.encode("c")];
    const bad = batcher.encode("d", 999);
    await expect(bad).rejects.toThrow(RangeError);
    expect((await Promise.all(ok)).map(lengthOf)).toEqual([1, 1, 1]);
    expect(encoder.calls.map((c) => c.maxLength).sort()).toEqual([32, 999, undefined].sort());
  });

  it("drops a waiting query whose signal fires", async () => {
    const encoder = fakeEncoder();
    const batcher = new QueryBatcher(encoder, { batchMax: 8, waitMs: 20 });
    const controller = new AbortController();
    const dropped = batcher.encode("gone", undefined, controller.signal);
    const kept = batcher.encode("kept");
    controller.abort(new DOMException("bye", "AbortError"));
    await expect(dropped).rejects.toMatchObject({ name: "AbortError" });
    expect(lengthOf(await kept)).toBe(4);
    expect(encoder.calls).toEqual([{ texts: ["kept"], maxLength: undefined }]);
  });

  it("releases the q-net of a query whose caller aborted while its batch was running, and no other", async () => {
    const encoder = fakeEncoder();
    encoder.hold();
    const batcher = new QueryBatcher(encoder, { batchMax: 8, waitMs: 0 });
    const controller = new AbortController();
    const abandoned = batcher.encode("gone!", undefined, controller.signal);
    const kept = batcher.encode("kept");
    await new Promise((r) => setTimeout(r, 5));
    expect(encoder.calls).toHaveLength(1); // both are in the running batch
    controller.abort(new DOMException("bye", "AbortError"));
    await expect(abandoned).rejects.toMatchObject({ name: "AbortError" });
    encoder.unhold();
    const mine = await kept;
    await vi.waitFor(() => expect(encoder.made.find((q) => q.length === 5)?.released).toBe(1));
    // The caller owns the q-net it received: the batcher never releases it.
    expect(mine.released).toBe(0);
    expect(encoder.made.map((q) => q.released)).toEqual([1, 0]);
  });

  it("releases every q-net of a batch the encoder answered with the wrong count", async () => {
    const encoder = fakeEncoder();
    const short: QueryEncoder<FakeQNet> = {
      async prepareQueries(texts, options) {
        return (await encoder.prepareQueries(texts, options)).slice(1);
      },
    };
    const batcher = new QueryBatcher(short, { batchMax: 8, waitMs: 5 });
    const results = await Promise.allSettled([batcher.encode("a"), batcher.encode("bb")]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(encoder.made.map((q) => q.released)).toEqual([0, 1]); // the one dropped by `short` is not the batcher's to see
  });
});
