/**
 * The deployment files (infra/k8s, infra/s3-policies, infra/gpu-worker.Dockerfile, wrangler.toml's
 * [env.*]) checked offline: every Kubernetes document against its JSON schema (kubernetes-models),
 * then against each other and against the code they deploy (the worker's config schema, its metrics,
 * its shutdown grace, the edge's bindings, the S3 key layout).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Namespace, PersistentVolumeClaim, Pod, Secret, Service } from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { parseAllDocuments } from "yaml";
import { loadConfig } from "../gpu-worker/src/service/config.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const K8S_DIR = join(ROOT, "infra/k8s");
const POLICY_DIR = join(ROOT, "infra/s3-policies");
const DOCKERFILE = join(ROOT, "infra/gpu-worker.Dockerfile");
const NAMESPACE = "hypencoder";

// ── Kubernetes documents ───────────────────────────────────────────────────────────────────────────

// Deliberately loose: the manifests are plain YAML, and the models validate the shape.
type Obj = Record<string, any>;
type ModelClass = new (data: any) => { validate(): void };

const MODELS: Record<string, ModelClass> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/PersistentVolumeClaim": PersistentVolumeClaim,
  "v1/Pod": Pod,
  "apps/v1/StatefulSet": StatefulSet,
  "apps/v1/Deployment": Deployment,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
};

interface Manifest {
  /** Relative to infra/k8s, e.g. "secrets/worker-secrets.example.yaml". */
  file: string;
  obj: Obj;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return yamlFiles(path);
      return /\.ya?ml$/.test(name) ? [path] : [];
    });
}

function loadManifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const path of yamlFiles(K8S_DIR)) {
    for (const doc of parseAllDocuments(readFileSync(path, "utf8"))) {
      if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors.map((e) => e.message).join("; ")}`);
      const obj = doc.toJS() as Obj | null;
      if (obj !== null) out.push({ file: relative(K8S_DIR, path), obj });
    }
  }
  return out;
}

const manifests = loadManifests();
const modelFor = (obj: Obj): ModelClass | undefined => MODELS[`${obj.apiVersion}/${obj.kind}`];
/** Validates `obj` with the kubernetes-models class of its apiVersion/kind (throws when invalid). */
const validate = (obj: Obj): void => {
  const Model = modelFor(obj);
  if (!Model) throw new Error(`no model for ${obj.apiVersion}/${obj.kind}`);
  new Model(obj).validate();
};
const find = (kind: string, name: string): Obj => {
  const found = manifests.filter((m) => m.obj.kind === kind && m.obj.metadata?.name === name);
  if (found.length !== 1) throw new Error(`expected exactly one ${kind} ${name}, found ${found.length}`);
  return found[0]!.obj;
};
const clone = <T>(value: T): T => structuredClone(value);

/** Does `labels` carry every key/value of `selector`? */
const selects = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** IEC/SI quantity → bytes (the subset the manifests use). */
function quantityBytes(q: string | number): number {
  const m = /^([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q));
  if (!m) throw new Error(`unsupported quantity ${q}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ""] ?? 1;
  return Number(m[1]) * unit;
}

const statefulSet = find("StatefulSet", "gpu-worker");
const podSpec: Obj = statefulSet.spec.template.spec;
const podLabels: Record<string, string> = statefulSet.spec.template.metadata.labels;
const worker: Obj = podSpec.containers.find((c: Obj) => c.name === "gpu-worker");
const workerConfig: Record<string, string> = find("ConfigMap", "gpu-worker-config").data;

/** A container port given by name or number → the containerPort number, or undefined. */
function resolvePort(container: Obj, port: string | number): number | undefined {
  const ports: Obj[] = container.ports ?? [];
  return typeof port === "number" ? ports.find((p) => p.containerPort === port)?.containerPort : ports.find((p) => p.name === port)?.containerPort;
}

/** The environment the worker container starts with: its envFrom sources in order, then env. */
function podEnvironment(container: Obj): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) Object.assign(env, find("ConfigMap", source.configMapRef.name).data);
    if (source.secretRef) {
      const secret = find("Secret", source.secretRef.name);
      Object.assign(env, secret.stringData ?? {}, Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(String(v), "base64").toString()])));
    }
  }
  for (const e of container.env ?? []) if (typeof e.value === "string") env[e.name] = e.value;
  return env;
}

describe("infra/k8s manifests", () => {
  it("parses every document and validates it against the Kubernetes schema of its kind", () => {
    expect(manifests.length).toBeGreaterThan(5);
    for (const { file, obj } of manifests) {
      expect(modelFor(obj), `${file}: no model for ${obj.apiVersion}/${obj.kind}`).toBeDefined();
      expect(() => validate(obj), `${file}: ${obj.kind} ${obj.metadata?.name}`).not.toThrow();
      if (obj.kind !== "Namespace") expect(obj.metadata.namespace, `${file}: ${obj.kind} ${obj.metadata.name}`).toBe(NAMESPACE);
    }
    expect(find("Namespace", NAMESPACE)).toBeDefined();
  });

  it("rejects deliberately broken copies (the validation is real)", () => {
    const brokenPort = clone(statefulSet);
    brokenPort.spec.template.spec.containers[0].ports[0].containerPort = "http";
    expect(() => validate(brokenPort)).toThrow(/containerPort/);

    const noContainers = clone(statefulSet);
    delete noContainers.spec.template.spec.containers;
    expect(() => validate(noContainers)).toThrow(/containers/);

    const brokenHpa = clone(find("HorizontalPodAutoscaler", "gpu-worker"));
    brokenHpa.spec.maxReplicas = "four";
    expect(() => validate(brokenHpa)).toThrow(/maxReplicas/);

    const brokenPdb = clone(find("PodDisruptionBudget", "gpu-worker"));
    brokenPdb.spec.selector = "app=gpu-worker";
    expect(() => validate(brokenPdb)).toThrow();
  });

  it("gives the StatefulSet a headless Service whose selector and ports match the pods", () => {
    const headless = find("Service", statefulSet.spec.serviceName);
    expect(headless.spec.clusterIP).toBe("None");
    expect(selects(statefulSet.spec.selector.matchLabels, podLabels)).toBe(true);
    for (const service of manifests.filter((m) => m.obj.kind === "Service").map((m) => m.obj)) {
      expect(selects(service.spec.selector, podLabels), `Service ${service.metadata.name} selects the worker pods`).toBe(true);
      for (const port of service.spec.ports) expect(resolvePort(worker, port.targetPort ?? port.port), `Service ${service.metadata.name} port`).toBe(8081);
    }
  });

  it("probes /healthz on the container's port, which is the worker's PORT", () => {
    const containerPort = worker.ports[0].containerPort;
    expect(String(containerPort)).toBe(workerConfig.PORT);
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      expect(worker[probe], probe).toBeDefined();
      expect(worker[probe].httpGet.path, probe).toBe("/healthz");
      expect(resolvePort(worker, worker[probe].httpGet.port), probe).toBe(containerPort);
    }
  });

  it("requests one GPU, tolerates GPU taints and runs locked down", () => {
    expect(String(worker.resources.limits["nvidia.com/gpu"])).toBe("1");
    expect(String(worker.resources.requests?.["nvidia.com/gpu"] ?? worker.resources.limits["nvidia.com/gpu"])).toBe("1");
    expect(podSpec.tolerations.some((t: Obj) => t.key === "nvidia.com/gpu")).toBe(true);
    expect(podSpec.securityContext.runAsNonRoot).toBe(true);
    expect(podSpec.securityContext.runAsUser).toBeGreaterThan(0);
    expect(worker.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    // The Dockerfile's USER is the same uid (files in /models and the cache are owned by it).
    expect(finalStage(readFileSync(DOCKERFILE, "utf8"))).toMatch(new RegExp(`^USER ${podSpec.securityContext.runAsUser}(:|\\s|$)`, "m"));
  });

  it("waits longer than the worker's own shutdown grace before killing it", () => {
    const graceMs = Number(workerConfig.SHUTDOWN_GRACE_MS);
    expect(graceMs).toBeGreaterThan(0);
    // server.close(grace) first, then the index side and the runtime are closed.
    expect(podSpec.terminationGracePeriodSeconds * 1000).toBeGreaterThanOrEqual(graceMs + 5000);
  });

  it("mounts the model, a local-NVMe shard cache larger than its budget, and a writable /tmp", () => {
    const mountFor = (path: string): Obj | undefined =>
      worker.volumeMounts.find((m: Obj) => path === m.mountPath || path.startsWith(`${m.mountPath}/`));
    const cacheMount = mountFor(workerConfig.SHARD_CACHE_DIR);
    expect(cacheMount).toBeDefined();
    const claim = statefulSet.spec.volumeClaimTemplates.find((t: Obj) => t.metadata.name === cacheMount!.name);
    expect(claim.spec.storageClassName).toBe("local-nvme");
    expect(Number(workerConfig.SHARD_CACHE_BYTES)).toBeLessThan(quantityBytes(claim.spec.resources.requests.storage));

    const modelMount = mountFor(workerConfig.MODEL_DIR);
    expect(modelMount?.readOnly).toBe(true);
    const modelVolume = podSpec.volumes.find((v: Obj) => v.name === modelMount!.name);
    expect(find("PersistentVolumeClaim", modelVolume.persistentVolumeClaim.claimName)).toBeDefined();
    expect(mountFor("/tmp")).toBeDefined();
  });

  it("provides every setting the worker requires, and only settings it reads, with valid values", () => {
    const env = podEnvironment(worker);
    // The real validation: the worker's own loader must accept this environment.
    const config = loadConfig(env);
    expect(config.host).toBe("0.0.0.0");
    expect(config.device).toBe("cuda");
    expect(config.insecureDev).toBe(false);
    expect(config.signingSecrets.length).toBeGreaterThan(0);

    // Required = removing it makes loadConfig fail. The known ones must be among them, and present.
    const schemaKeys = workerSchemaKeys();
    const required = schemaKeys.filter((key) => {
      const without = { ...env };
      delete without[key];
      try {
        loadConfig(without);
        return false;
      } catch {
        return true;
      }
    });
    expect(required).toEqual(expect.arrayContaining(["MODEL_DIR", "HYP_SIGNING_SECRETS"]));
    for (const key of required) expect(env, `required ${key}`).toHaveProperty(key);

    // No typos: every key is something the worker reads (config schema, or the S3 store's credentials).
    const known = new Set([...schemaKeys, "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"]);
    for (const key of Object.keys(env)) expect(known.has(key), `${key} is not read by the worker`).toBe(true);
  });

  it("references only ConfigMaps, Secrets and claims that exist", () => {
    for (const source of worker.envFrom) {
      if (source.configMapRef) expect(find("ConfigMap", source.configMapRef.name)).toBeDefined();
      if (source.secretRef) expect(find("Secret", source.secretRef.name)).toBeDefined();
    }
    const cloudflared = find("Deployment", "cloudflared").spec.template.spec;
    for (const volume of cloudflared.volumes) {
      if (volume.configMap) expect(find("ConfigMap", volume.configMap.name)).toBeDefined();
      if (volume.secret) expect(find("Secret", volume.secret.secretName)).toBeDefined();
    }
  });

  it("points the HPA and the PDB at the StatefulSet, on a metric the worker exports", () => {
    const hpa = find("HorizontalPodAutoscaler", "gpu-worker");
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "StatefulSet", name: statefulSet.metadata.name });
    expect(hpa.spec.minReplicas).toBeLessThanOrEqual(hpa.spec.maxReplicas);
    const exported = exportedWorkerMetrics();
    for (const metric of hpa.spec.metrics) {
      expect(metric.type).toBe("Pods");
      expect(exported).toContain(metric.pods.metric.name);
    }
    const pdb = find("PodDisruptionBudget", "gpu-worker");
    expect(selects(pdb.spec.selector.matchLabels, podLabels)).toBe(true);
    expect(pdb.spec.maxUnavailable ?? 0).toBeLessThan(hpa.spec.minReplicas);
    const policy = find("NetworkPolicy", "gpu-worker-ingress");
    expect(selects(policy.spec.podSelector.matchLabels, podLabels)).toBe(true);
  });

  it("routes every GPU_WORKERS URL of production through the tunnel to its StatefulSet pod", () => {
    const hpa = find("HorizontalPodAutoscaler", "gpu-worker");
    const tunnel = parseAllDocuments(find("ConfigMap", "cloudflared-config").data["config.yaml"])[0]!.toJS() as Obj;
    const routes = new Map<string, string>(tunnel.ingress.filter((r: Obj) => r.hostname).map((r: Obj) => [r.hostname, r.service]));
    const workers = wranglerEnv("production").vars.GPU_WORKERS.split(",");
    expect(workers).toHaveLength(hpa.spec.maxReplicas);
    workers.forEach((url: string, n: number) => {
      const host = new URL(url).hostname;
      expect(routes.get(host), host).toBe(`http://${statefulSet.metadata.name}-${n}.${statefulSet.spec.serviceName}.${NAMESPACE}.svc.cluster.local:${workerConfig.PORT}`);
    });
    expect(tunnel.ingress.at(-1)).toEqual({ service: "http_status:404" });
  });

  it("keeps Secrets as placeholders, outside the folder that `kubectl apply -f infra/k8s/` applies", () => {
    const secrets = manifests.filter((m) => m.obj.kind === "Secret");
    expect(secrets.length).toBeGreaterThan(0);
    for (const { file, obj } of secrets) {
      expect(file.startsWith("secrets/"), file).toBe(true);
      expect(obj.data, `${file}: use stringData placeholders`).toBeUndefined();
      for (const [key, value] of Object.entries(obj.stringData ?? {})) expect(String(value), `${obj.metadata.name}.${key}`).toMatch(/^REPLACE_ME/);
    }
  });

  it("stores indexes at the root of the bucket that the policies and the production edge name", () => {
    const m = /^s3:\/\/([^/]+)\/?$/.exec(workerConfig.INDEX_STORE);
    expect(m, "INDEX_STORE must be s3://bucket with no prefix: the edge writes uploads at the bucket root").not.toBeNull();
    const bucket = m![1]!;
    expect(wranglerEnv("production").vars.S3_BUCKET).toBe(bucket);
    for (const file of ["edge-policy.json", "gpu-worker-policy.json"]) {
      for (const statement of policy(file).Statement) for (const r of toArray(statement.Resource)) expect(r.startsWith(`arn:aws:s3:::${bucket}`), `${file}: ${r}`).toBe(true);
    }
  });
});

/** The keys of the worker's env schema (gpu-worker/src/service/config.ts), read from its source. */
function workerSchemaKeys(): string[] {
  const source = readFileSync(join(ROOT, "gpu-worker/src/service/config.ts"), "utf8");
  const block = /const envSchema = z\.object\(\{([\s\S]*?)\n\}\);/.exec(source)?.[1];
  if (!block) throw new Error("envSchema not found in config.ts");
  return [...block.matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]!);
}

/** Metric names the worker registers: the ServiceMetrics fields and the gauges registered in app.ts. */
function exportedWorkerMetrics(): string[] {
  const sources = ["gpu-worker/src/service/metrics.ts", "gpu-worker/src/service/app.ts"].map((f) => readFileSync(join(ROOT, f), "utf8")).join("\n");
  return [...sources.matchAll(/(?:name: |\.gauge\()"(hyp_[a-z0-9_]+)"/g)].map((m) => m[1]!);
}

// ── S3 policies ────────────────────────────────────────────────────────────────────────────────────

interface Statement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action: string | string[];
  Resource: string | string[];
  Principal?: unknown;
  Condition?: Obj;
  NotAction?: unknown;
  NotResource?: unknown;
}
interface Policy {
  Version: string;
  Statement: Statement[];
}

const toArray = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
const policy = (file: string): Policy => JSON.parse(readFileSync(join(POLICY_DIR, file), "utf8")) as Policy;

/** IAM wildcard match: `*` any run of characters (slashes included), `?` one character. */
function iamMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "i");
  return re.test(value);
}

/** Identity-policy evaluation without conditions: an explicit Deny wins, else any Allow, else denied. */
function allowed(p: Policy, action: string, resource: string): boolean {
  const matching = p.Statement.filter((s) => toArray(s.Action).some((a) => iamMatch(a, action)) && toArray(s.Resource).some((r) => iamMatch(r, resource)));
  return !matching.some((s) => s.Effect === "Deny") && matching.some((s) => s.Effect === "Allow");
}

const BUCKET_ARN = "arn:aws:s3:::hypencoder-prod-data";
const UPLOAD_KEY = `${BUCKET_ARN}/tenants/acme/uploads/up_01/docs.jsonl`;
const MANIFEST_KEY = `${BUCKET_ARN}/tenants/acme/indexes/news/versions/v000001/manifest.json`;
const SHARD_KEY = `${BUCKET_ARN}/tenants/acme/indexes/news/versions/v000001/shards/0a1b2c3d/s00000.hxs`;
// An index named "uploads": `tenants/*/uploads/*` matches it, because `*` spans slashes.
const TRICKY_INDEX_KEY = `${BUCKET_ARN}/tenants/acme/indexes/uploads/versions/v000001/manifest.json`;

describe("infra/s3-policies", () => {
  it("are JSON IAM documents of policy language version 2012-10-17", () => {
    const files = readdirSync(POLICY_DIR).filter((f) => f.endsWith(".json"));
    expect(files).toEqual(expect.arrayContaining(["edge-policy.json", "gpu-worker-policy.json", "bucket-policy.json"]));
    for (const file of files) {
      const doc = JSON.parse(readFileSync(join(POLICY_DIR, file), "utf8")) as Obj;
      if (file === "bucket-lifecycle.json") continue; // an S3 lifecycle configuration, not a policy
      expect(doc.Version, file).toBe("2012-10-17");
      for (const s of doc.Statement as Statement[]) {
        expect(["Allow", "Deny"], file).toContain(s.Effect);
        expect(s.NotAction ?? s.NotResource, `${file}: NotAction/NotResource widen grants`).toBeUndefined();
        if (s.Effect === "Allow") expect(toArray(s.Action).some((a) => a.includes("*")), `${file}: ${s.Sid} wildcard action`).toBe(false);
      }
    }
  });

  it("lets the edge write and read uploads, and nothing else", () => {
    const edge = policy("edge-policy.json");
    for (const s of edge.Statement.filter((st) => st.Effect === "Allow")) {
      expect(toArray(s.Resource), s.Sid).toEqual([`${BUCKET_ARN}/tenants/*/uploads/*`]);
      for (const action of toArray(s.Action)) expect(["s3:PutObject", "s3:GetObject"], s.Sid).toContain(action);
    }
    expect(allowed(edge, "s3:PutObject", UPLOAD_KEY)).toBe(true);
    expect(allowed(edge, "s3:GetObject", UPLOAD_KEY)).toBe(true);
    expect(allowed(edge, "s3:DeleteObject", UPLOAD_KEY)).toBe(false);
    expect(allowed(edge, "s3:ListBucket", BUCKET_ARN)).toBe(false);
    for (const key of [MANIFEST_KEY, SHARD_KEY, TRICKY_INDEX_KEY]) {
      for (const action of ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]) expect(allowed(edge, action, key), `${action} ${key}`).toBe(false);
    }
    expect(allowed(edge, "s3:PutObject", `${BUCKET_ARN}/other/thing`)).toBe(false);
  });

  it("lets the workers read uploads, read and write indexes, list, and abort multipart uploads", () => {
    for (const file of ["gpu-worker-policy.json", "gpu-worker-policy.unconditional-list.json"]) {
      const w = policy(file);
      expect(allowed(w, "s3:GetObject", UPLOAD_KEY), file).toBe(true);
      expect(allowed(w, "s3:PutObject", UPLOAD_KEY), file).toBe(false);
      expect(allowed(w, "s3:DeleteObject", UPLOAD_KEY), file).toBe(false);
      for (const action of ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]) {
        expect(allowed(w, action, SHARD_KEY), `${file}: ${action}`).toBe(true);
        expect(allowed(w, action, MANIFEST_KEY), `${file}: ${action}`).toBe(true);
      }
      expect(allowed(w, "s3:ListBucket", BUCKET_ARN), file).toBe(true);
      expect(allowed(w, "s3:PutObject", `${BUCKET_ARN}/other/thing`), file).toBe(false);
      expect(allowed(w, "s3:DeleteBucket", BUCKET_ARN), file).toBe(false);
    }
    // The default policy limits listing to the tenant prefixes.
    const list = policy("gpu-worker-policy.json").Statement.find((s) => toArray(s.Action).includes("s3:ListBucket"))!;
    expect(list.Condition?.StringLike?.["s3:prefix"]).toEqual(expect.arrayContaining(["tenants/*/indexes/*"]));
  });
});

// ── Dockerfile ─────────────────────────────────────────────────────────────────────────────────────

/** The text of the Dockerfile's last stage (from its last FROM). */
function finalStage(dockerfile: string): string {
  const starts = [...dockerfile.matchAll(/^FROM /gm)].map((m) => m.index!);
  return dockerfile.slice(starts.at(-1));
}

describe("infra/gpu-worker.Dockerfile", () => {
  const dockerfile = readFileSync(DOCKERFILE, "utf8");
  const runtime = finalStage(dockerfile);

  it("is multi-stage, on a CUDA 12 + cuDNN runtime, with a checksum-verified Node 22", () => {
    expect(dockerfile.match(/^FROM .+ AS \w+/gm)!.length).toBeGreaterThanOrEqual(3);
    expect(dockerfile).toMatch(/^ARG CUDA_IMAGE=nvidia\/cuda:12\.[0-9.]+-cudnn-runtime-ubuntu[0-9.]+$/m);
    expect(runtime).toMatch(/^FROM \$\{CUDA_IMAGE\}/);
    expect(dockerfile).toMatch(/^ARG NODE_VERSION=22\.\d+\.\d+$/m);
    expect(dockerfile).toMatch(/^ARG NODE_SHA256=[0-9a-f]{64}$/m);
    expect(dockerfile).toContain('| sha256sum -c -');
  });

  it("sets the JS heap limit deliberately, within the pod's memory limit", () => {
    const heapMiB = Number(/NODE_OPTIONS=--max-old-space-size=(\d+)/.exec(runtime)?.[1]);
    expect(heapMiB).toBeGreaterThanOrEqual(4096);
    const statefulset = readFileSync(join(ROOT, "infra/k8s/30-gpu-worker-statefulset.yaml"), "utf8");
    const limitGi = Number(/limits:[\s\S]*?memory: (\d+)Gi/.exec(statefulset)?.[1]);
    expect(heapMiB / 1024).toBeLessThanOrEqual(limitGi / 2);
  });

  it("installs production dependencies under the repository's install-script policy", () => {
    expect(dockerfile).toMatch(/^COPY package\.json package-lock\.json \.npmrc \.\/$/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(readFileSync(join(ROOT, ".npmrc"), "utf8")).toMatch(/^strict-allow-scripts=true$/m);
  });

  it("installs onnxruntime-node's CUDA 12 provider on purpose, with the variable its script reads", () => {
    expect(dockerfile).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install\b/);
    // Fails when an onnxruntime-node upgrade renames the variable or drops the manifest.
    const utils = readFileSync(join(ROOT, "node_modules/onnxruntime-node/script/install-utils.js"), "utf8");
    expect(utils).toContain("process.env.ONNXRUNTIME_NODE_INSTALL");
    const metadata = readFileSync(join(ROOT, "node_modules/onnxruntime-node/script/install-metadata.js"), "utf8");
    expect(metadata).toMatch(/'linux\/x64': \['cuda12'\]/);
    // The postinstall stays denied for everyone else.
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as Obj;
    expect(pkg.allowScripts["onnxruntime-node"]).toBe(false);
  });

  it("runs the worker as a non-root user, with a /healthz HEALTHCHECK and the launcher's GLIBC_TUNABLES", () => {
    const user = /^USER (\S+)$/m.exec(runtime)?.[1];
    expect(user).toBeDefined();
    expect(user!.split(":")[0]).not.toMatch(/^(root|0)$/);
    expect(runtime).toMatch(/^HEALTHCHECK .*\n?.*\/healthz/m);
    const launcher = readFileSync(join(ROOT, "bin/launch.mjs"), "utf8");
    const tunables = /export const GLIBC_TUNABLES = "([^"]+)"/.exec(launcher)![1]!;
    expect(runtime).toContain(`GLIBC_TUNABLES=${tunables}`);
    expect(runtime).toMatch(/^CMD \["node", "bin\/run-ts\.mjs", "gpu-worker\/src\/server\.ts"\]$/m);
    expect(runtime).toMatch(new RegExp(`^EXPOSE ${workerConfig.PORT}$`, "m"));
    expect(runtime).toMatch(/^VOLUME \[.*"\/models".*"\/var\/cache\/hypencoder\/shards".*\]$/m);
    // tsx is what bin/run-ts.mjs loads: it must be a runtime dependency, not a dev one.
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as Obj;
    expect(pkg.dependencies.tsx).toBeDefined();
  });

  it("has an allow-list ignore file that keeps every path the Dockerfile copies", () => {
    const ignore = readFileSync(`${DOCKERFILE}.dockerignore`, "utf8").split("\n").map((l) => l.trim());
    expect(ignore).toContain("*");
    const reincluded = ignore.filter((l) => l.startsWith("!")).map((l) => l.slice(1).replace(/\/$/, ""));
    const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/)).filter((s) => !s.startsWith("--"));
    expect(copied.length).toBeGreaterThan(3);
    for (const path of copied) expect(reincluded, path).toContain(path.replace(/\/$/, ""));
  });
});

// ── wrangler.toml environments ─────────────────────────────────────────────────────────────────────

const ENVS = ["dev", "staging", "production"] as const;
const SECRET_NAMES = ["ADMIN_TOKEN", "WORKER_SIGNING_SECRET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"];

function wranglerEnv(env?: string): any {
  return unstable_readConfig({ config: join(ROOT, "wrangler.toml"), ...(env ? { env } : {}) }, { hideWarnings: true });
}

describe("wrangler.toml environments", () => {
  const top = wranglerEnv();

  it.each(ENVS)("[env.%s] repeats every top-level binding and sets its own vars", (env) => {
    const config = wranglerEnv(env);
    expect(config.name).toMatch(/^hypencoder-search-edge/);
    // Bindings are not inherited: each one at the top level must be declared again here.
    const bindings = (c: Obj) => ({
      d1: c.d1_databases.map((d: Obj) => d.binding).sort(),
      durableObjects: c.durable_objects.bindings.map((b: Obj) => `${b.name}:${b.class_name}`).sort(),
      kv: (c.kv_namespaces ?? []).map((k: Obj) => k.binding).sort(),
      r2: (c.r2_buckets ?? []).map((r: Obj) => r.binding).sort(),
    });
    expect(bindings(config)).toEqual(bindings(top));
    for (const d of config.d1_databases) expect(d.migrations_dir).toBe("edge/migrations");
    for (const key of Object.keys(top.vars)) expect(config.vars, `${env} var ${key}`).toHaveProperty(key);
    for (const key of ["GPU_WORKERS", "S3_BUCKET", "RATE_LIMIT_PER_MINUTE"]) expect(config.vars).toHaveProperty(key);
    for (const url of config.vars.GPU_WORKERS.split(",")) expect(new URL(url).protocol).toBe("https:");
    expect(Number.isInteger(Number(config.vars.RATE_LIMIT_PER_MINUTE))).toBe(true);
    for (const secret of SECRET_NAMES) expect(config.vars, `${secret} must be a secret, not a var`).not.toHaveProperty(secret);
  });

  it("gives each environment its own Worker and D1 database", () => {
    const configs = ENVS.map((env) => wranglerEnv(env));
    expect(new Set(configs.map((c) => c.name)).size).toBe(ENVS.length);
    expect(new Set(configs.map((c) => c.d1_databases[0].database_name)).size).toBe(ENVS.length);
    expect(wranglerEnv("production").d1_databases[0].database_name).toBe("hypencoder");
  });

  it("serves production from a custom domain (the Cache API does nothing on workers.dev)", () => {
    const production = wranglerEnv("production");
    expect(production.workers_dev).toBe(false);
    expect(production.routes).toEqual([expect.objectContaining({ custom_domain: true })]);
  });

  it("bundles for production offline (wrangler deploy --dry-run)", () => {
    const outdir = mkdtempSync(join(tmpdir(), "wrangler-dry-run-"));
    try {
      const run = spawnSync(process.execPath, [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--env", "production", "--outdir", outdir], {
        cwd: ROOT,
        encoding: "utf8",
        env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" },
        timeout: 120_000,
      });
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(run.stdout).toContain("env.DB (hypencoder)");
      expect(run.stdout).toContain("env.RATE_LIMITER (RateLimiter)");
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});
