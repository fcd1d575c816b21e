/**
 * Prometheus metrics on a registry of the service's own (not prom-client's global one, so several
 * apps can live in one process, as in tests). Labels hold routes and statuses only: never tenant
 * ids, index names or text, which would leak data and explode cardinality.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class ServiceMetrics {
  readonly registry = new Registry();

  constructor() {
    // prom-client's process gauges (resident memory, heap spaces, event-loop lag, GC, handles), so
    // growth such as unloaded index versions kept alive is visible. Registered on this service's own
    // registry: a second service in the same process gets its own set, with no duplicate names.
    collectDefaultMetrics({ register: this.registry });
  }
  readonly requests = new Counter({
    name: "hyp_worker_http_requests_total",
    help: "HTTP requests by route pattern, method and status",
    labelNames: ["route", "method", "status"] as const,
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: "hyp_worker_http_request_seconds",
    help: "HTTP request latency to the response headers (for a frame stream: to its first frame)",
    labelNames: ["route", "method", "status"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly rejected = new Counter({
    name: "hyp_worker_admission_rejected_total",
    help: "Requests refused with 503 because the queue was full",
    registers: [this.registry],
  });
  readonly encoderCalls = new Counter({
    name: "hyp_worker_encoder_calls_total",
    help: "Query-encoder runs (each encodes one dynamic batch)",
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: "hyp_worker_encode_batch_size",
    help: "Queries per query-encoder run",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });
  readonly encodeSeconds = new Histogram({
    name: "hyp_worker_encode_seconds",
    help: "Query-encoder run time per batch",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly searchSeconds = new Histogram({
    name: "hyp_worker_search_seconds",
    help: "Index search time per request (after the q-net is ready)",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  /** Gauges read at scrape time, e.g. queue depth from the admission controller. */
  gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /**
   * The index side's hook: `read()` returns named numbers (cache bytes, shards loaded…), exported as
   * `hyp_worker_<prefix>{stat="<name>"}`. Names must be fixed stat names, not tenant or index ids.
   */
  source(prefix: string, help: string, read: () => Record<string, number>): void {
    new Gauge({
      name: `hyp_worker_${prefix}`,
      help,
      labelNames: ["stat"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [stat, value] of Object.entries(read())) this.set({ stat }, value);
      },
    });
  }

  /**
   * Worker memory for loaded index data (IndexRegistry.memoryStats): `hypencoder_loaded_versions`,
   * the index versions loaded, and `hypencoder_loaded_bytes`, the bytes they (shards, deletion
   * masks) and the other registered contributors (the WAL cache's tails) hold.
   */
  loadedIndexMemory(read: () => { loadedVersions: number; loadedBytes: number }): void {
    this.gauge("hypencoder_loaded_versions", "Index versions loaded in this worker's memory", () => read().loadedVersions);
    this.gauge("hypencoder_loaded_bytes", "Bytes of loaded index data: shards and deletion masks of loaded versions, and cached WAL tails", () => read().loadedBytes);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
