import { describe, expect, it } from "vitest";
import { searchParamsSchema, type SearchRequest } from "../../../shared/api/worker-api.ts";
import { WorkerRejectedError } from "../errors.ts";
import { fanOutSearch, type FanoutInput } from "./fanout.ts";
import { type FakeCall, fakeWorkerPool, frames, shardHits } from "../../test/fake-workers.ts";
import { mergeTopK } from "./merge.ts";
import { ownersFor, shardPlacementKey } from "./rendezvous.ts";

const SECRET = "fanout-test-secret";
const WORKERS = ["http://w0.test", "http://w1.test", "http://w2.test"];
const SHARDS = Array.from({ length: 8 }, (_, i) => `s${i}`);
const request: Omit<SearchRequest, "shards"> = {
  tenant: "acme",
  index: "docs",
  version: 4,
  query: "hello",
  params: searchParamsSchema.parse({ k: 7 }),
  fields: [],
  includeQNet: false,
};
const owners = (shard: string) => ownersFor(shardPlacementKey("acme", "docs", 4, shard), WORKERS);
const expectedTop = (shards: string[], k = 7) => mergeTopK(shards.map((s) => shardHits(s)), k);

function setup(overrides: Partial<FanoutInput> = {}) {
  const pool = fakeWorkerPool(SECRET);
  const input: FanoutInput = { request, shards: SHARDS, workers: WORKERS, fetcher: pool.fetcher, secret: SECRET, timeoutMs: 500, ...overrides };
  return { pool, input };
}

describe("mergeTopK", () => {
  it("orders by score desc then id, keeps k, de-duplicates ids", () => {
    const merged = mergeTopK(
      [
        [{ id: "b", score: 5 }, { id: "x", score: 1 }],
        [{ id: "a", score: 5 }, { id: "b", score: 6 }, { id: "c", score: 2 }],
      ],
      3,
    );
    expect(merged).toEqual([{ id: "b", score: 6 }, { id: "a", score: 5 }, { id: "c", score: 2 }]);
  });
});

describe("fanOutSearch", () => {
  it("sends one signed request per first-choice owner with its shards, and merges the top-k", async () => {
    const { pool, input } = setup();
    const result = await fanOutSearch(input);
    expect(result.partial).toBe(false);
    expect(result.missingShards).toEqual([]);
    expect(result.hits).toEqual(expectedTop(SHARDS));
    const perWorker = new Map<string, string[]>();
    for (const s of SHARDS) perWorker.set(owners(s)[0]!, [...(perWorker.get(owners(s)[0]!) ?? []), s]);
    expect(pool.calls.length).toBe(perWorker.size);
    for (const call of pool.calls) {
      expect(call.tenant).toBe("acme");
      expect((call.body as SearchRequest).shards).toEqual(perWorker.get(call.worker));
    }
    expect(result.stats.shardsSearched).toBe(SHARDS.length);
    expect(result.stats.docsScored).toBe(SHARDS.length * 5);
  });

  it.each(["down", "http500", "hang", "errorFrame", "garbage"] as const)("retries a failing worker's shards on their next owners (%s)", async (mode) => {
    const { pool, input } = setup({ timeoutMs: 100 });
    const bad = owners("s0")[0]!;
    pool.behaviour.set(bad, mode);
    const result = await fanOutSearch(input);
    expect(result.partial).toBe(false);
    expect(result.hits).toEqual(expectedTop(SHARDS));
    const failed = result.attempts.filter((a) => !a.ok);
    expect(failed.map((a) => a.worker)).toEqual([bad]);
    if (mode === "hang") expect(failed[0]!.reason).toBe("timeout");
    // Each of the bad worker's shards went to its own second choice.
    for (const shard of failed[0]!.shards) {
      expect(result.attempts.some((a) => a.ok && a.worker === owners(shard)[1] && a.shards.includes(shard))).toBe(true);
    }
    if (mode === "hang") expect(pool.calls.find((c) => c.worker === bad)!.aborted()).toBe(true);
  });

  it("retries shards a worker reports missing", async () => {
    const { pool, input } = setup();
    pool.behaviour.set(owners("s0")[0]!, "loseShards");
    const result = await fanOutSearch(input);
    expect(result.partial).toBe(false);
    expect(result.hits).toEqual(expectedTop(SHARDS));
  });

  it("flags the answer partial, naming the shards, when every owner fails", async () => {
    const { pool, input } = setup({ maxAttempts: 2 });
    const [first, second] = owners("s3");
    pool.behaviour.set(first!, "down");
    pool.behaviour.set(second!, "http500");
    const result = await fanOutSearch(input);
    expect(result.partial).toBe(true);
    const lost = SHARDS.filter((s) => [first, second].includes(owners(s)[0]) && [first, second].includes(owners(s)[1]));
    expect(result.missingShards).toEqual(lost.sort());
    expect(result.missingShards).toContain("s3");
    expect(result.hits).toEqual(expectedTop(SHARDS.filter((s) => !lost.includes(s))));
  });

  it("all workers down: every shard missing, no hits", async () => {
    const { pool, input } = setup();
    for (const w of WORKERS) pool.behaviour.set(w, "down");
    const result = await fanOutSearch(input);
    expect(result).toMatchObject({ partial: true, missingShards: [...SHARDS].sort(), hits: [] });
  });

  it("does not retry a request the worker rejects as invalid", async () => {
    const { pool, input } = setup();
    for (const w of WORKERS) pool.behaviour.set(w, "http400");
    await expect(fanOutSearch(input)).rejects.toBeInstanceOf(WorkerRejectedError);
    expect(pool.calls.length).toBeLessThanOrEqual(WORKERS.length);
  });

  it("an answer over the frame limit is the client's 400, not a failover to the next workers", async () => {
    const { pool, input } = setup({ shards: ["s0"], timeoutMs: 20_000 });
    for (const w of WORKERS) pool.behaviour.set(w, "oversizedFrame");
    await expect(fanOutSearch(input)).rejects.toMatchObject({ status: 400, code: "answer_too_large", message: expect.stringContaining("fewer hits (k)") });
    expect(pool.calls).toHaveLength(1);
  });

  it("passes a worker's answer_too_large through as the client's error, without running the query elsewhere", async () => {
    const message = "the answer would be larger than the worker's limit of 62914560 bytes (passed at hit 61 of k = 1000); ask for a smaller k or fewer fields";
    // As a 400 before any frame, or as an error frame after progress frames (the status was already sent).
    const answers = [
      () => Response.json({ error: { code: "answer_too_large", message } }, { status: 400 }),
      (call: FakeCall) => frames({ type: "progress", shard: (call.body as SearchRequest).shards![0]!, iteration: 1, hits: [] }, { type: "error", code: "answer_too_large", message }),
    ];
    for (const answer of answers) {
      const { pool, input } = setup();
      pool.routes.set("POST /v1/search", answer);
      await expect(fanOutSearch(input)).rejects.toMatchObject({ name: "WorkerRejectedError", status: 400, code: "answer_too_large", message });
      // Never a failover: no shard was sent to a second owner.
      const perShard = new Map<string, number>();
      for (const call of pool.calls) for (const shard of (call.body as SearchRequest).shards ?? []) perShard.set(shard, (perShard.get(shard) ?? 0) + 1);
      expect(Math.max(...perShard.values())).toBe(1);
    }
  });

  it("a client abort cancels every upstream call", async () => {
    const { pool, input } = setup({ timeoutMs: 10_000 });
    for (const w of WORKERS) pool.behaviour.set(w, "hang");
    const controller = new AbortController();
    const pending = fanOutSearch({ ...input, signal: controller.signal });
    await new Promise((r) => setTimeout(r, 20));
    controller.abort(new DOMException("client went away", "AbortError"));
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    expect(pool.calls.length).toBeGreaterThan(0);
    expect(pool.calls.every((c) => c.aborted())).toBe(true);
  });

  it("forwards progress frames", async () => {
    const seen: string[] = [];
    const { input } = setup({ onProgress: (f) => seen.push(f.shard) });
    await fanOutSearch(input);
    expect(seen.sort()).toEqual([...SHARDS].sort());
  });
});
