/**
 * The edge's search page (GET /) as a person uses it, in headless Chromium (Debian's `chromium`,
 * driven by playwright-core) against the real stack: the edge under `wrangler dev`, a GPU worker
 * process and radosgw. The page must ask for a key, show the API's error for a bad one, list the
 * tenant's indexes for a good one, and render hits for a query — with no script errors or CSP
 * violations.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Locator, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTinyModel } from "../../infra/dev/demo-model.ts";
import { stopAll } from "../../infra/dev/processes.ts";
import { PublicApi } from "../../infra/dev/public-api.ts";
import { startStack } from "../../infra/dev/stack.ts";
import { testS3Settings } from "../support/s3.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const DOCS = [
  { id: "vim", text: "Vi IMproved, a highly configurable text editor", title: "text editor" },
  { id: "curl", text: "command line tool for transferring data with URL syntax", title: "URL transfers" },
  { id: "gimp", text: "GNU Image Manipulation Program", title: "image editor" },
];

let dir: string;
let edgeUrl: string;
let apiKey: string;
let browser: BrowserContext;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH`);
  dir = await mkdtemp(join(tmpdir(), "hyp-page-"));
  const stack = await startStack({
    dir,
    modelDir: await ensureTinyModel(join(dir, "model"), () => {}),
    s3: await testS3Settings("page"),
    workers: 1,
    signingSecret: "page-test-signing-secret",
    adminToken: "page-test-admin-token",
    onLine: () => () => {},
  });
  edgeUrl = stack.edge.url;
  const admin = PublicApi.admin(edgeUrl, "page-test-admin-token");
  await admin.createTenant("pagetest");
  apiKey = await admin.createKey("pagetest", ["search", "manage"]);
  const api = new PublicApi(edgeUrl, apiKey);
  await api.createIndex("packages");
  const body = new TextEncoder().encode(DOCS.map((d) => JSON.stringify(d)).join("\n"));
  const uploadId = await api.upload("packages", [{ name: "docs.jsonl", body }]);
  const build = await api.startBuild("packages", uploadId, { storeFields: ["text", "title"] });
  expect((await api.waitForBuild("packages", build.id)).state).toBe("succeeded");

  browser = await chromium.launchPersistentContext(join(dir, "chromium-profile"), { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
  page = await browser.newPage();
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    // The browser logs the 401 of the bad-key step as a failed resource load; that one is expected.
    if (message.type() === "error" && !/Failed to load resource.*401/.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  await page.goto(`${edgeUrl}/`);
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await stopAll(5_000);
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function textOf(locator: Locator, expected: RegExp | string): Promise<string> {
  let last: string | null = null;
  for (let i = 0; i < 150; i++) {
    last = await locator.textContent();
    if (last !== null && (typeof expected === "string" ? last === expected : expected.test(last))) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`expected ${String(expected)}, the page shows ${JSON.stringify(last)}`);
}

describe("search page in headless Chromium", () => {
  it("renders the form", async () => {
    expect(await page.title()).toBe("Hypencoder Search");
    for (const selector of ["#key", "#load", "#index", "#query", "#search button[type=submit]"]) {
      expect(await page.locator(selector).isVisible(), selector).toBe(true);
    }
  });

  it("asks for a key, then shows the API's error for a bad one", async () => {
    await page.locator("#load").click();
    await textOf(page.locator("#error"), "Paste an API key first.");
    await page.locator("#key").fill(`hyp_${"x".repeat(43)}`);
    await page.locator("#load").click();
    await textOf(page.locator("#error"), "unauthorized: invalid API key");
  });

  it("lists the tenant's indexes and renders hits for a query", async () => {
    await page.locator("#key").fill(apiKey);
    await page.locator("#load").click();
    await textOf(page.locator("#index"), /packages/);
    await page.locator("#query").fill("text editor");
    await page.locator("#search button[type=submit]").click();
    await page.locator("#hits li").first().waitFor({ state: "visible", timeout: 20_000 });
    const shown = await page.locator("#hits li").allTextContents();
    expect(shown).toHaveLength(DOCS.length);
    for (const doc of DOCS) expect(shown.some((text) => text.includes(doc.id))).toBe(true);
    expect(problems).toEqual([]);
  });
});
