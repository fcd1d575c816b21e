/**
 * The edge's search page (GET /) as a person uses it, in headless Chromium (Debian's `chromium`,
 * driven by playwright-core) against the real stack: the edge under `wrangler dev`, a GPU worker
 * process and radosgw. The page must ask for a key, show the API's error for a bad one, list the
 * tenant's indexes for a good one, and for a query render the streamed search progress one line per
 * progress frame, the hits (name, synopsis, snippet with the query's words marked) and the stats
 * (docs scored, iterations, timing) — with no script errors or CSP violations. The filter box
 * (README "Filters") lists the index's declared fields, narrows the hits to matching documents,
 * and shows a clear error for text that is not JSON and for the API's 400 on an invalid filter. Structure only:
 * the model is the tiny random checkpoint, so which packages come first is not checked.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Locator, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDebianCorpus } from "../../infra/dev/corpus/debian-corpus.ts";
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
/** Enough documents that a graph search from a few entry points takes several steps. */
const DOC_COUNT = 400;

let dir: string;
let edgeUrl: string;
let apiKey: string;
let browser: BrowserContext;
let page: Page;
let titles: Map<string, string>;
let sections: Map<string, string>;
/** The most common section among the documents: the filter test's value. */
let commonSection: string;
const problems: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH`);
  dir = await mkdtemp(join(tmpdir(), "hyp-page-"));
  const docs = (await readDebianCorpus()).filter((_, i) => i % 150 === 0).slice(0, DOC_COUNT);
  titles = new Map(docs.map((d) => [d.id, d.title]));
  sections = new Map(docs.map((d) => [d.id, d.metadata.section]));
  const counts = new Map<string, number>();
  for (const d of docs) counts.set(d.metadata.section, (counts.get(d.metadata.section) ?? 0) + 1);
  commonSection = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
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
  await api.createIndex("packages", { section: "string" });
  const body = new TextEncoder().encode(docs.map((d) => JSON.stringify({ id: d.id, title: d.title, text: d.text, section: d.metadata.section })).join("\n"));
  const uploadId = await api.upload("packages", [{ name: "docs.jsonl", body }]);
  const build = await api.startBuild("packages", uploadId, { storeFields: ["text", "title", "section"], degree: 8, entryRows: 0 });
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

/** Submits a query and waits for its results (the status line names the query once they are shown). */
async function searchFor(query: string, options: { mode?: "approx" | "exact"; entryPoints?: number; filter?: string; fields?: string } = {}): Promise<void> {
  await submit(query, options);
  await textOf(page.locator("#status"), new RegExp(`Results for "${query}"`));
}

async function submit(query: string, options: { mode?: "approx" | "exact"; entryPoints?: number; filter?: string; fields?: string } = {}): Promise<void> {
  await page.locator("#filter").fill(options.filter ?? "");
  await page.locator("#fields").fill(options.fields ?? "title,text");
  await page.locator("#mode").selectOption(options.mode ?? "approx");
  await page.locator("#entryPoints").fill(options.entryPoints ? String(options.entryPoints) : "");
  await page.locator("#query").fill(query);
  await page.locator("#search button[type=submit]").click();
}

async function statValue(label: string): Promise<number> {
  const item = page.locator("#stats li", { hasText: label }).first();
  return Number((await item.locator("b").textContent())!.replace(/,/g, ""));
}

describe("search page in headless Chromium", () => {
  it("renders the form", async () => {
    expect(await page.title()).toBe("Hypencoder Search");
    for (const selector of ["#key", "#load", "#index", "#query", "#k", "#mode", "#entryPoints", "#fields", "#filter", "#search button[type=submit]"]) {
      expect(await page.locator(selector).isVisible(), selector).toBe(true);
    }
    expect(await page.locator("#progress").isVisible()).toBe(false);
  });

  it("asks for a key, then shows the API's error for a bad one", async () => {
    await page.locator("#load").click();
    await textOf(page.locator("#error"), "Paste an API key first.");
    await page.locator("#key").fill(`hyp_${"x".repeat(43)}`);
    await page.locator("#load").click();
    await textOf(page.locator("#error"), "unauthorized: invalid API key");
  });

  it("lists the tenant's indexes", async () => {
    await page.locator("#key").fill(apiKey);
    await page.locator("#load").click();
    await textOf(page.locator("#index"), new RegExp(`packages \\(ready, ${DOC_COUNT} docs\\)`));
  });

  it("renders hits with name, synopsis and a snippet, the query's words marked", async () => {
    await searchFor("text editor", { mode: "exact" });
    const hits = page.locator("#hits li.hit");
    expect(await hits.count()).toBe(10);
    for (let i = 0; i < 10; i++) {
      const hit = hits.nth(i);
      const name = (await hit.locator(".name").textContent())!;
      // The synopsis is the stored title, the snippet the text after it.
      expect(await hit.locator(".synopsis").textContent()).toBe(titles.get(name));
      const snippet = (await hit.locator(".snippet").textContent())!;
      expect(snippet.length).toBeGreaterThan(0);
      expect(snippet.length).toBeLessThanOrEqual(262);
      expect(snippet.startsWith(titles.get(name)!)).toBe(false);
      expect(Number(await hit.locator(".score").textContent())).not.toBeNaN();
    }
    const marks = await page.locator("#hits mark").allTextContents();
    for (const mark of marks) expect(["text", "editor"]).toContain(mark.toLowerCase());
    // Exact search scores every document in one step.
    expect(await statValue("docs scored")).toBe(DOC_COUNT);
    expect(await statValue("iteration")).toBe(1);
    expect(await page.locator("#progress-list li").count()).toBe(1);
  });

  it("shows the graph search's progress frames one line per iteration, then the stats", async () => {
    await searchFor("network monitoring tool", { entryPoints: 4 });
    const iterations = await statValue("iterations");
    expect(iterations).toBeGreaterThan(1);
    const lines = await page.locator("#progress-list li").allTextContents();
    expect(lines).toHaveLength(iterations);
    lines.forEach((line, i) => expect(line).toMatch(new RegExp(`^iteration ${i + 1}: best -?\\d+\\.\\d{3} · \\S+.*\\(\\d+/10 of the final results\\)$`)));
    // The last progress frame is the final top list.
    expect(lines.at(-1)).toMatch(/\(10\/10 of the final results\)$/);
    const docsScored = await statValue("docs scored");
    expect(docsScored).toBeGreaterThan(4);
    expect(docsScored).toBeLessThanOrEqual(DOC_COUNT);
    for (const label of ["ms encoding the query", "ms searching", "ms in total"]) expect(await statValue(label)).toBeGreaterThanOrEqual(0);
    expect(await page.locator("#progress").isVisible()).toBe(true);
    expect(problems).toEqual([]);
  });

  it("lists the index's filterable fields under the filter box", async () => {
    await textOf(page.locator("#filter-fields"), "Filterable fields: section (string)");
  });

  it("narrows the hits to documents matching the filter, in exact and approximate search", async () => {
    const filter = JSON.stringify({ field: "section", op: "eq", value: commonSection });
    for (const mode of ["exact", "approx"] as const) {
      await searchFor("library", { mode, filter, fields: "title,section" });
      const names = await page.locator("#hits li.hit .name").allTextContents();
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) expect(sections.get(name), name).toBe(commonSection);
      // The stored field is listed under each hit as it came back.
      expect(new Set(await page.locator("#hits li.hit .field").allTextContents())).toEqual(new Set([`section: ${commonSection}`]));
      expect(await page.locator("#stats li", { hasText: "filter plan" }).locator("b").textContent()).toMatch(/^filtered-(walk|exhaustive)$/);
    }
  });

  it("refuses filter text that is not JSON in the page, without asking the API", async () => {
    let searches = 0;
    const count = (request: { url: () => string }) => {
      if (request.url().includes("/search")) searches++;
    };
    page.on("request", count);
    await submit("library", { filter: '{"field": "section",' });
    await textOf(page.locator("#error"), /^Filter: not valid JSON \(/);
    expect(await page.locator("#filter").getAttribute("aria-invalid")).toBe("true");
    page.off("request", count);
    expect(searches).toBe(0);
  });

  it("shows the API's 400 for an invalid filter as a filter error naming the field", async () => {
    await submit("library", { filter: JSON.stringify({ field: "author", op: "eq", value: "x" }) });
    await textOf(page.locator("#error"), /^Filter rejected: invalid_request: filter\.field: field "author" is not declared for filtering/);
    await submit("library", { filter: JSON.stringify({ field: "section", op: "gt", value: 3 }) });
    await textOf(page.locator("#error"), /^Filter rejected: invalid_request: filter\.op: op "gt" does not apply to field "section" of type string/);
    expect(await page.locator("#filter").getAttribute("aria-invalid")).toBe("true");
    // Clearing the filter searches everything again.
    await searchFor("library", { filter: "" });
    expect(await page.locator("#error").isVisible()).toBe(false);
    expect(await page.locator("#filter").getAttribute("aria-invalid")).toBeNull();
    // The browser logs the 400s as failed resource loads; those are expected, anything else is not.
    expect(problems.filter((p) => !/Failed to load resource.*400/.test(p))).toEqual([]);
  });
});
