/**
 * Browser check of the edge's search page (GET /), in headless Chromium driven by playwright-core.
 * Not a vitest file (it needs a browser and `wrangler dev`); run it with
 *
 *   node bin/run-ts.mjs test/browser/search-page.check.ts
 *
 * It starts `wrangler dev` (offline, local D1 in a temporary folder), opens the page, checks the
 * form renders, that the page's own script runs under its CSP, and that a bad API key produces
 * a clear error in the page. Exits non-zero on any failure.
 *
 * Needs Chromium (Debian: `apt-get install -y chromium`;
 * or set CHROMIUM_PATH).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext, type Locator } from "playwright-core";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WRANGLER = join(ROOT, "node_modules/.bin/wrangler");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const OFFLINE_ENV = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function run(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(WRANGLER, args, { cwd: ROOT, env: OFFLINE_ENV, stdio: ["ignore", "inherit", "inherit"] });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`wrangler ${args.join(" ")} exited with ${code}`))));
  });
}

async function waitForHealth(base: string, dev: ChildProcess): Promise<void> {
  for (let i = 0; i < 120; i++) {
    if (dev.exitCode !== null) throw new Error(`wrangler dev exited with ${dev.exitCode}`);
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(500);
  }
  throw new Error("wrangler dev did not answer /healthz within 60 s");
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

async function main(): Promise<void> {
  const temp = await mkdtemp(join(tmpdir(), "hyp-page-check-"));
  const state = join(temp, "wrangler-state");
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let dev: ChildProcess | undefined;
  let context: BrowserContext | undefined;
  try {
    await run(["d1", "migrations", "apply", "hypencoder", "--local", "--persist-to", state]);
    dev = spawn(WRANGLER, ["dev", "--local", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", state], {
      cwd: ROOT,
      env: OFFLINE_ENV,
      stdio: ["ignore", "inherit", "inherit"],
      detached: true, // own process group, so workerd is stopped with it
    });
    await waitForHealth(base, dev);

    context = await chromium.launchPersistentContext(join(temp, "chromium-profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error" && !/Failed to load resource.*401/.test(message.text())) problems.push(`console: ${message.text()}`);
    });

    await page.goto(`${base}/`);
    check((await page.title()) === "Hypencoder Search", "the page loads");
    for (const selector of ["#key", "#load", "#index", "#query", "#search button[type=submit]"]) {
      check(await page.locator(selector).isVisible(), `${selector} is shown`);
    }

    await page.locator("#load").click();
    await page.locator("#error").waitFor({ state: "visible", timeout: 10_000 });
    check((await page.locator("#error").textContent()) === "Paste an API key first.", "asks for a key before calling the API");

    await page.locator("#key").fill(`hyp_${"x".repeat(43)}`);
    await page.locator("#load").click();
    await waitForText(page.locator("#error"), "unauthorized: invalid API key");
    check(true, "a bad key shows the API's error in the page");
    check(problems.length === 0, `no script errors or CSP violations${problems.length ? `: ${problems.join("; ")}` : ""}`);
  } finally {
    await context?.close();
    if (dev?.pid !== undefined && dev.exitCode === null) process.kill(-dev.pid, "SIGTERM");
    await rm(temp, { recursive: true, force: true });
  }
}

async function waitForText(locator: Locator, expected: string): Promise<void> {
  let last: string | null = null;
  for (let i = 0; i < 100; i++) {
    last = await locator.textContent();
    if (last === expected) return;
    await sleep(100);
  }
  throw new Error(`expected ${JSON.stringify(expected)}, page shows ${JSON.stringify(last)}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
