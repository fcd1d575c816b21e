/**
 * A small client of the edge's public API, used the way a user would use it (plain fetch, presigned
 * PUTs with no SDK): by `npm run dev` to seed the demo, and by the end-to-end tests.
 */

export class ApiRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

export interface UploadedFile {
  name: string;
  body: Uint8Array;
}

export interface BuildState {
  id: string;
  version: number;
  state: string;
  progress?: Record<string, number>;
  error?: { code: string; message: string };
}

export interface SearchAnswer {
  hits: Array<{ id: string; score: number; fields?: Record<string, unknown> }>;
  partial: boolean;
  missingShards: string[];
  version: number;
  stats: Record<string, unknown>;
}

export interface WriteAnswer {
  seq: number;
  upserted: number;
  deleted: number;
}

export interface IndexDetail {
  id: string;
  status: string;
  activeVersion: number | null;
  docCount: number;
  headSeq: number;
  compactedSeq: number;
  segments: number;
  pendingDocs: number;
  [key: string]: unknown;
}

export class PublicApi {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  /** The operator API (ADMIN_TOKEN). */
  static admin(baseUrl: string, adminToken: string): PublicApi {
    return new PublicApi(baseUrl, adminToken);
  }

  async createTenant(id: string, name = id): Promise<void> {
    await this.json("POST", "/v1/admin/tenants", { id, name });
  }

  /** Returns the new API key (shown once). */
  async createKey(tenant: string, scopes: Array<"search" | "manage">): Promise<string> {
    return ((await this.json("POST", `/v1/admin/tenants/${tenant}/keys`, { scopes })) as { key: string }).key;
  }

  /** `fields`: the index's filterable fields and their types (README "Filters"), fixed at creation. */
  async createIndex(id: string, fields?: Record<string, "string" | "number" | "boolean" | "string[]">): Promise<void> {
    await this.json("POST", "/v1/indexes", fields ? { id, fields } : { id });
  }

  /** Asks for presigned URLs, PUTs every file with plain fetch, and returns the upload id. */
  async upload(index: string, files: UploadedFile[]): Promise<string> {
    const upload = (await this.json("POST", `/v1/indexes/${index}/uploads`, {
      files: files.map((f) => ({ name: f.name, bytes: f.body.length })),
    })) as { id: string; files: Array<{ name: string; url: string; method?: string; headers: Record<string, string> }> };
    for (const target of upload.files) {
      const file = files.find((f) => f.name === target.name)!;
      const response = await fetch(target.url, { method: target.method ?? "PUT", headers: target.headers, body: file.body });
      if (!response.ok) throw new ApiRequestError(response.status, "upload_failed", `PUT ${target.name}: ${await response.text()}`);
    }
    return upload.id;
  }

  async startBuild(index: string, uploadId: string, options: Record<string, unknown> = {}): Promise<BuildState> {
    return (await this.json("POST", `/v1/indexes/${index}/builds`, { uploadId, ...options })) as BuildState;
  }

  async build(index: string, buildId: string): Promise<BuildState> {
    return (await this.json("GET", `/v1/indexes/${index}/builds/${buildId}`)) as BuildState;
  }

  /** Polls a build until it succeeds or fails; `onProgress` sees every poll. */
  async waitForBuild(index: string, buildId: string, options: { timeoutMs?: number; onProgress?: (b: BuildState) => void } = {}): Promise<BuildState> {
    const deadline = Date.now() + (options.timeoutMs ?? 600_000);
    for (;;) {
      const state = await this.build(index, buildId);
      options.onProgress?.(state);
      if (state.state === "succeeded" || state.state === "failed") return state;
      if (Date.now() > deadline) throw new Error(`build ${buildId} still ${state.state} after ${options.timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** POST /v1/indexes/:id/documents: upserts and deletes, acknowledged once durable. */
  async write(index: string, body: { upsert?: Array<Record<string, unknown>>; delete?: Array<string | number> }, idempotencyKey?: string): Promise<WriteAnswer> {
    const response = await this.request("POST", `/v1/indexes/${index}/documents`, body, idempotencyKey ? { "idempotency-key": idempotencyKey } : {});
    const text = await response.text();
    if (!response.ok) {
      const error = safeJson(text) as { error?: { code?: string; message?: string } } | undefined;
      throw new ApiRequestError(response.status, error?.error?.code ?? "error", error?.error?.message ?? text);
    }
    return safeJson(text) as WriteAnswer;
  }

  /** GET /v1/indexes/:id/documents/:docId; undefined when the document is not live (404). */
  async document(index: string, docId: string): Promise<{ id: string; fields: Record<string, unknown> } | undefined> {
    const response = await this.request("GET", `/v1/indexes/${index}/documents/${encodeURIComponent(docId)}`);
    if (response.status === 404) return undefined;
    const text = await response.text();
    if (!response.ok) throw new ApiRequestError(response.status, "error", text);
    return safeJson(text) as { id: string; fields: Record<string, unknown> };
  }

  /** GET /v1/indexes/:id */
  async index(index: string): Promise<IndexDetail> {
    return (await this.json("GET", `/v1/indexes/${index}`)) as IndexDetail;
  }

  async search(index: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
    return this.request("POST", `/v1/indexes/${index}/search`, body, headers);
  }

  async json(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await this.request(method, path, body);
    const text = await response.text();
    if (!response.ok) {
      const error = safeJson(text) as { error?: { code?: string; message?: string } } | undefined;
      throw new ApiRequestError(response.status, error?.error?.code ?? "error", error?.error?.message ?? text);
    }
    return safeJson(text);
  }

  request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${this.baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
