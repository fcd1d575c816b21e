/**
 * Living-index faults (issue 10), on real processes: one GPU worker reached by the edge through a
 * TCP proxy (so its answer can be held back while the test kills it), and S3 (radosgw) reached by
 * every process through another proxy (so it can be taken down). What must hold:
 *
 * - a worker killed after the WAL object is written but before the edge acknowledged: the client
 *   gets a 5xx, and its retry with the same Idempotency-Key is acknowledged with that seq, applied once;
 * - S3 down during a write: a 503, nothing acknowledged, nothing stored; the retry then succeeds;
 * - a worker killed during a compaction: the previous version keeps serving exactly the live
 *   documents, nothing half-written is ever active, and compaction completes after the restart.
 */
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../infra/dev/processes.ts";
import { PublicApi } from "../../infra/dev/public-api.ts";
import { indexPrefix, MANIFEST_FILE, walPrefix } from "../../shared/index/keys.ts";
import { note, ProductStack } from "../support/product-stack.ts";
import { s3TestClient, s3TestEnv } from "../support/s3.ts";
import { readAnswer } from "../support/search-answers.ts";
import { TcpProxy } from "../support/tcp-proxy.ts";

const TENANT = "livefaults";
const INDEX = "docs";
const COMPACT_TAIL_DOCS = 600;
const EDGE_WORKER_TIMEOUT_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const doc = (id: string) => ({ id, text: `fault note ${id} on harbours, lichen and ${id.length % 2 ? "orbits" : "saffron"}` });

describe("living-index faults: killed workers and S3 down", () => {
  let workerProxy: TcpProxy;
  let s3Proxy: TcpProxy;
  let product: ProductStack;
  let api: PublicApi;
  const live = new Set<string>();

  const list = async (prefix: string) => {
    const s3 = await s3TestClient();
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: product.s3.bucket, Prefix: prefix, ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.NextContinuationToken;
    } while (token);
    return keys;
  };
  const killWorker = async () => {
    // The whole process group: the worker runs under a launcher (bin/run-ts.mjs).
    product.workers[0]!.process.kill("SIGKILL");
    await product.workers[0]!.process.exited;
  };
  const exactIds = async () => {
    const answer = await readAnswer(await api.search(INDEX, { query: "harbours and orbits", k: 1000, mode: "exact" }));
    expect(answer.status, JSON.stringify(answer.error)).toBe(200);
    return answer.result!.hits.map((h) => h.id);
  };

  beforeAll(async () => {
    const workerPort = await freePort();
    workerProxy = await TcpProxy.start(`http://127.0.0.1:${workerPort}`);
    s3Proxy = await TcpProxy.start((await s3TestEnv()).config.endpoint!);
    product = await ProductStack.start({
      prefix: "faults-living",
      workers: 1,
      workerPorts: [workerPort],
      s3Endpoint: s3Proxy.url,
      edgeVars: {
        GPU_WORKERS: workerProxy.url,
        WORKER_TIMEOUT_MS: String(EDGE_WORKER_TIMEOUT_MS),
        RATE_LIMIT_PER_MINUTE: "0",
        RESULT_CACHE_TTL_SECONDS: "0",
        COMPACT_TAIL_DOCS: String(COMPACT_TAIL_DOCS),
        COMPACT_TAIL_AGE_SECONDS: "100000",
      },
      workerEnv: { DEVICE: "cpu" },
    });
    const admin = product.admin();
    await admin.createTenant(TENANT);
    api = product.tenant(await admin.createKey(TENANT, ["search", "manage"]));
    await api.createIndex(INDEX);
    for (const answer of [await api.write(INDEX, { upsert: ["a", "b", "c"].map(doc) })]) expect(answer.upserted).toBe(3);
    for (const id of ["a", "b", "c"]) live.add(id);
  }, 240_000);

  afterEach(async () => {
    await workerProxy.restore();
    await s3Proxy.restore();
    if (product && !isAlive()) await product.restartWorker(0);
  });

  afterAll(async () => {
    await product?.close();
    await workerProxy?.close();
    await s3Proxy?.close();
  });

  const isAlive = () => product.isAlive(0);

  it("a worker killed between the WAL write and the acknowledgement: 5xx, then the keyed retry is acknowledged once", async () => {
    const before = new Set(await list(walPrefix(TENANT, INDEX)));
    const headBefore = (await api.index(INDEX)).headSeq;
    // The worker's answer is held in the proxy, so it writes the WAL object and then dies unheard.
    workerProxy.set({ delayMs: 5_000 });
    const key = `kill-${Date.now()}`;
    const pending = api.request("POST", `/v1/indexes/${INDEX}/documents`, { upsert: [doc("killed")] }, { "idempotency-key": key });
    let written: string | undefined;
    for (let i = 0; i < 100 && !written; i++) {
      await sleep(100);
      written = (await list(walPrefix(TENANT, INDEX))).find((k) => !before.has(k));
    }
    expect(written, "the worker wrote the WAL object").toBeDefined();
    await killWorker();
    const first = await pending;
    expect(first.status).toBeGreaterThanOrEqual(500);
    expect((await api.index(INDEX)).headSeq).toBe(headBefore);

    await workerProxy.restore();
    await product.restartWorker(0);
    const retry = await api.write(INDEX, { upsert: [doc("killed")] }, key);
    expect(retry.upserted).toBe(1);
    expect(written!.endsWith(`${String(retry.seq).padStart(12, "0")}.hwal`), `${written} holds seq ${retry.seq}`).toBe(true);
    live.add("killed");
    const ids = await exactIds();
    expect(ids.filter((id) => id === "killed")).toHaveLength(1);
    expect(new Set(ids)).toEqual(live);
    const next = await api.write(INDEX, { upsert: [doc("after-kill")] });
    expect(next.seq).toBeGreaterThan(retry.seq);
    live.add("after-kill");
  }, 120_000);

  it("S3 down during a write: 503 and nothing acknowledged or stored; the retry succeeds", async () => {
    const headBefore = (await api.index(INDEX)).headSeq;
    const walBefore = await list(walPrefix(TENANT, INDEX));
    await s3Proxy.down();
    const t0 = Date.now();
    const response = await api.request("POST", `/v1/indexes/${INDEX}/documents`, { upsert: [doc("s3-down")] });
    note(`write with S3 down: ${response.status} after ${Date.now() - t0} ms`);
    expect(response.status).toBe(503);
    expect(Date.now() - t0).toBeLessThan(EDGE_WORKER_TIMEOUT_MS * 3);
    await s3Proxy.restore();
    expect((await api.index(INDEX)).headSeq).toBe(headBefore);
    expect(await api.document(INDEX, "s3-down")).toBeUndefined();
    // Only a seal (an empty batch) may have been added for the seq in doubt, never the batch itself.
    expect(new Set(await exactIds())).toEqual(live);
    const retry = await api.write(INDEX, { upsert: [doc("s3-down")] });
    expect(retry.seq).toBeGreaterThan(headBefore);
    live.add("s3-down");
    expect(new Set(await exactIds())).toEqual(live);
    expect((await list(walPrefix(TENANT, INDEX))).length).toBeGreaterThan(walBefore.length);
  }, 120_000);

  it("a worker killed during a compaction: the previous version keeps serving, nothing half-built is active, and compaction completes after the restart", async () => {
    const manifestsBefore = (await list(indexPrefix(TENANT, INDEX))).filter((k) => k.endsWith(MANIFEST_FILE));
    const detailBefore = await api.index(INDEX);
    // Cross COMPACT_TAIL_DOCS: the next maintenance run dispatches a compaction to the only worker.
    for (let start = 0; start < COMPACT_TAIL_DOCS + 50; start += 250) {
      const batch = Array.from({ length: 250 }, (_, i) => doc(`k${start + i}`));
      await api.write(INDEX, { upsert: batch });
      for (const d of batch) live.add(d.id);
    }
    // Kill it as soon as the compaction has started writing its version (or shortly after the trigger).
    const t0 = Date.now();
    let started = false;
    while (Date.now() - t0 < 4_000 && !started) {
      await sleep(50);
      const keys = await list(`${indexPrefix(TENANT, INDEX)}versions/`);
      started = keys.some((k) => !k.endsWith(MANIFEST_FILE) && !manifestsBefore.some((m) => k.startsWith(m.slice(0, -MANIFEST_FILE.length))));
    }
    await killWorker();
    const manifestsAtKill = (await list(indexPrefix(TENANT, INDEX))).filter((k) => k.endsWith(MANIFEST_FILE));
    note(`killed ${started ? "while the compaction was writing" : "after the trigger"}; manifests before ${manifestsBefore.length}, at kill ${manifestsAtKill.length}`);

    await product.restartWorker(0);
    // Right after the restart: whatever version is active serves exactly the live documents.
    const detail = await api.index(INDEX);
    expect(detail.activeVersion === detailBefore.activeVersion || manifestsAtKill.length > manifestsBefore.length).toBe(true);
    expect(new Set(await exactIds())).toEqual(live);

    // The compaction is retried (its job was lost with the worker) and completes.
    const deadline = Date.now() + 150_000;
    let now = await api.index(INDEX);
    while (!(now.pendingDocs === 0 && now.compactedSeq === now.headSeq) && Date.now() < deadline) {
      await sleep(1_000);
      now = await api.index(INDEX);
    }
    note(`after the retried compaction: ${JSON.stringify(now)}`);
    expect(now.compactedSeq).toBe(now.headSeq);
    expect(now.docCount).toBe(live.size);
    expect(new Set(await exactIds())).toEqual(live);
  }, 240_000);
});
