/**
 * The search page served at GET /: paste an API key, pick an index, search. Self-contained (no
 * external assets), so it works offline and under a strict Content-Security-Policy that allows
 * exactly this script and style by hash (./routes.ts). Hits and progress are rendered with
 * textContent only: hit fields are tenant data and must never be parsed as HTML.
 *
 * A search is streamed (`stream: true`, NDJSON): the worker sends a `progress` frame after each
 * graph-search iteration, with the best hits so far, and the page shows them as they arrive, then
 * the `result` frame with the hits' fields and the timing and docs-scored stats.
 *
 * The filter box takes a metadata filter as JSON (README "Filters"), sent as the request's `filter`;
 * text that is not JSON is refused in the page, and the API's 400 for an invalid filter (an
 * undeclared field, a wrong type, a limit) is shown as a filter error with the API's message. The
 * fields the selected index declares are listed under the box.
 *
 * Hits show their id as the name, the stored `title` field as the synopsis and a snippet of the
 * stored `text` field (without its first line when that repeats the title), with the query's words
 * marked. Other requested fields are listed below.
 */

export const PAGE_STYLE = `
:root { font-family: system-ui, sans-serif; color-scheme: light dark; --muted: #6b6b76; --line: #d8d8de; --accent: #2f5fd0; --mark: #fff0a8; }
@media (prefers-color-scheme: dark) { :root { --muted: #a0a0ab; --line: #3a3a44; --accent: #8fb0ff; --mark: #5a4d00; } }
body { max-width: 52rem; margin: 1.5rem auto 4rem; padding: 0 1rem; line-height: 1.45; }
header h1 { font-size: 1.5rem; margin: 0 0 .15rem; }
header p { margin: 0 0 1rem; color: var(--muted); }
input, select, button { font: inherit; padding: .35rem .55rem; border: 1px solid var(--line); border-radius: .35rem; background: Canvas; color: CanvasText; }
button { cursor: pointer; }
button[type=submit] { background: var(--accent); border-color: var(--accent); color: #fff; padding: .45rem 1.1rem; }
details { border: 1px solid var(--line); border-radius: .5rem; padding: .5rem .8rem; margin-bottom: 1rem; }
details summary { cursor: pointer; color: var(--muted); }
.settings { display: grid; grid-template-columns: 7rem 1fr auto; gap: .5rem .8rem; align-items: center; margin-top: .6rem; }
.querybar { display: flex; gap: .5rem; }
.querybar input { flex: 1; font-size: 1.1rem; padding: .5rem .7rem; }
.options { display: flex; flex-wrap: wrap; gap: 1rem; margin: .6rem 0 0; color: var(--muted); font-size: .9rem; align-items: center; }
.options input, .options select { padding: .15rem .35rem; }
.options input[type=number] { width: 5rem; }
.options #fields { width: 10rem; }
.filterbox { display: flex; gap: .5rem; align-items: center; margin: .6rem 0 0; color: var(--muted); font-size: .9rem; }
.filterbox input { flex: 1; font-family: ui-monospace, monospace; font-size: .85rem; }
.filterbox input[aria-invalid=true] { border-color: #c62828; }
#filter-fields { margin: .25rem 0 0; color: var(--muted); font-size: .8rem; }
#status { color: var(--muted); min-height: 1.4em; margin: 1rem 0 .3rem; }
#error { color: #c62828; font-weight: 600; }
#stats { display: flex; flex-wrap: wrap; gap: .4rem; margin: 0 0 .8rem; padding: 0; list-style: none; }
#stats li { border: 1px solid var(--line); border-radius: 1rem; padding: .05rem .6rem; font-size: .85rem; font-variant-numeric: tabular-nums; }
#stats b { font-weight: 600; }
#progress { margin: 0 0 1rem; font-size: .85rem; color: var(--muted); }
#progress ol { margin: .4rem 0 0; padding-left: 1.6rem; font-variant-numeric: tabular-nums; }
#progress li { margin: .1rem 0; }
#progress .overlap { margin-left: .4rem; }
#hits { list-style: none; padding: 0; margin: 0; }
.hit { padding: .7rem 0; border-top: 1px solid var(--line); }
.hit .name { font-weight: 650; font-size: 1.05rem; }
.hit .synopsis { margin-left: .5rem; }
.hit .score { float: right; color: var(--muted); font-size: .8rem; font-variant-numeric: tabular-nums; }
.hit .snippet { margin: .25rem 0 0; color: var(--muted); font-size: .92rem; }
.hit .field { margin: .2rem 0 0; font-size: .85rem; color: var(--muted); white-space: pre-wrap; }
mark { background: var(--mark); color: inherit; border-radius: .15rem; }
`;

export const PAGE_SCRIPT = `
"use strict";
const $ = (id) => document.getElementById(id);
const SNIPPET_CHARS = 260;
const PROGRESS_NAMES = 4;
let running = null;
// Index id -> its declared filterable fields (from the index list).
const declaredFields = new Map();

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function headers(extra) {
  const key = $("key").value.trim();
  if (!key) throw new Error("Paste an API key first.");
  return { ...(extra || {}), authorization: "Bearer " + key };
}

// A non-2xx answer's JSON error body becomes "code: message"; a refused filter says so first.
async function failure(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  const error = body && body.error;
  const message = error ? error.code + ": " + error.message : "HTTP " + response.status;
  if (response.status === 400 && error && /^filter[.:\[]/.test(String(error.message))) {
    $("filter").setAttribute("aria-invalid", "true");
    return new Error("Filter rejected: " + message);
  }
  return new Error(message);
}

function showDeclaredFields() {
  const fields = declaredFields.get($("index").value) || {};
  const names = Object.keys(fields);
  $("filter-fields").textContent = names.length
    ? "Filterable fields: " + names.map((name) => name + " (" + fields[name] + ")").join(", ")
    : "This index declares no filterable fields.";
}

// The filter box's JSON, undefined when empty; throws a clear error for text that is not JSON.
function filterOf() {
  const text = $("filter").value.trim();
  $("filter").removeAttribute("aria-invalid");
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    $("filter").setAttribute("aria-invalid", "true");
    throw new Error("Filter: not valid JSON (" + error.message + ")");
  }
}

async function loadIndexes() {
  showError("");
  $("status").textContent = "Loading indexes…";
  const select = $("index");
  select.replaceChildren();
  try {
    const response = await fetch("/v1/indexes", { headers: headers() });
    if (!response.ok) throw await failure(response);
    const { indexes } = await response.json();
    declaredFields.clear();
    for (const index of indexes) {
      declaredFields.set(index.id, index.fields || {});
      const option = element("option", "", index.id + " (" + index.status + ", " + Number(index.docCount).toLocaleString() + " docs)");
      option.value = index.id;
      select.append(option);
    }
    showDeclaredFields();
    $("status").textContent = indexes.length ? indexes.length + " index(es). Type a query." : "This tenant has no indexes yet.";
    if (indexes.length) $("query").focus();
  } catch (error) {
    $("status").textContent = "";
    showError(error.message);
  }
}

// The query's words (3+ letters), for marking them in snippets.
function queryWords(query) {
  return [...new Set(query.toLowerCase().split(/[^\\p{L}\\p{N}]+/u).filter((w) => w.length >= 3))];
}

// Appends text to parent with every occurrence of a query word wrapped in <mark> (text nodes only).
function appendMarked(parent, text, words) {
  if (!words.length) return parent.append(text);
  const pattern = new RegExp("(" + words.map((w) => w.replace(/[.*+?^\${}()|[\\]\\\\]/g, "\\\\$&")).join("|") + ")", "giu");
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    parent.append(text.slice(last, match.index));
    parent.append(element("mark", "", match[0]));
    last = match.index + match[0].length;
  }
  parent.append(text.slice(last));
}

// The stored text without a first line that repeats the title, cut at a word near SNIPPET_CHARS.
function snippetOf(text, title) {
  let body = String(text);
  const newline = body.indexOf("\\n");
  if (title && newline >= 0 && body.slice(0, newline).trim() === String(title).trim()) body = body.slice(newline + 1);
  body = body.replace(/\\s+/g, " ").trim();
  if (body.length <= SNIPPET_CHARS) return body;
  const cut = body.lastIndexOf(" ", SNIPPET_CHARS);
  return body.slice(0, cut > SNIPPET_CHARS / 2 ? cut : SNIPPET_CHARS) + " …";
}

function renderHit(hit, words) {
  const item = element("li", "hit");
  const fields = hit.fields || {};
  item.append(element("span", "score", Number(hit.score).toFixed(3)));
  item.append(element("span", "name", hit.id));
  if (typeof fields.title === "string") {
    const synopsis = element("span", "synopsis");
    appendMarked(synopsis, fields.title, words);
    item.append(synopsis);
  }
  if (typeof fields.text === "string") {
    const snippet = element("p", "snippet");
    appendMarked(snippet, snippetOf(fields.text, fields.title), words);
    item.append(snippet);
  }
  for (const [name, value] of Object.entries(fields)) {
    if (name === "title" || name === "text") continue;
    item.append(element("p", "field", name + ": " + (typeof value === "string" ? value : JSON.stringify(value))));
  }
  return item;
}

function stat(label, value) {
  const item = element("li");
  item.append(element("b", "", value), " " + label);
  return item;
}

function renderStats(result, iterationsSeen) {
  const s = result.stats || {};
  const ms = s.ms || {};
  const items = [
    stat("results", String((result.hits || []).length)),
    stat("docs scored", Number(s.docsScored || 0).toLocaleString()),
    stat(s.iterations === 1 ? "iteration" : "iterations", String(s.iterations ?? iterationsSeen)),
    stat("ms encoding the query", String(Math.round(ms.encode || 0))),
    stat("ms searching", String(Math.round(ms.search || 0))),
    stat("ms in total", String(Math.round(ms.total || 0))),
  ];
  if (s.shardsSearched > 1) items.push(stat("shards", String(s.shardsSearched)));
  if (s.plan) items.push(stat("filter plan", String(s.plan)));
  if (result.version) {
    const version = element("li", "", "index version ");
    version.append(element("b", "", String(result.version)));
    items.push(version);
  }
  $("stats").replaceChildren(...items);
  $("stats").hidden = false;
}

// One line per progress frame: iteration number, the best names so far (and later, how many of them made the final list).
function renderProgress(frame, multipleShards) {
  const names = (frame.hits || []).slice(0, PROGRESS_NAMES).map((h) => h.id);
  const best = frame.hits && frame.hits.length ? Number(frame.hits[0].score).toFixed(3) : "–";
  const item = element("li", "", (multipleShards ? "shard " + frame.shard + ", " : "") + "iteration " + frame.iteration + ": best " + best + " · " + names.join(", "));
  item.dataset.ids = JSON.stringify((frame.hits || []).map((h) => h.id));
  $("progress-list").append(item);
  $("progress-count").textContent = String($("progress-list").children.length);
  $("progress").hidden = false;
}

function markOverlap(finalIds) {
  const final = new Set(finalIds);
  for (const item of $("progress-list").children) {
    const ids = JSON.parse(item.dataset.ids || "[]");
    const found = ids.filter((id) => final.has(id)).length;
    item.append(element("span", "overlap", "(" + found + "/" + final.size + " of the final results)"));
  }
}

async function search(event) {
  event.preventDefault();
  showError("");
  const index = $("index").value;
  if (!index) return showError("Load the indexes and pick one first.");
  running?.abort();
  const controller = new AbortController();
  running = controller;
  const query = $("query").value;
  const words = queryWords(query);
  const fields = $("fields").value.split(",").map((f) => f.trim()).filter(Boolean);
  const body = { query, k: Number($("k").value) || 10, mode: $("mode").value, variant: $("variant").value, fields, stream: true };
  // Empty: the variant's default (proxy 288, published 10,000 per shard). Fewer entry points make the walk take more steps.
  if ($("entryPoints").value) body.entryPoints = Number($("entryPoints").value);
  try {
    const filter = filterOf();
    if (filter !== undefined) body.filter = filter;
  } catch (error) {
    running = null;
    $("status").textContent = "";
    return showError(error.message);
  }
  $("status").textContent = "Searching…";
  $("hits").replaceChildren();
  $("stats").hidden = true;
  $("progress").hidden = true;
  $("progress-list").replaceChildren();
  const started = performance.now();
  try {
    const response = await fetch("/v1/indexes/" + encodeURIComponent(index) + "/search", {
      method: "POST",
      headers: headers({ "content-type": "application/json", accept: "application/x-ndjson" }),
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!response.ok) throw await failure(response);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const shards = new Set();
    let buffer = "";
    let result = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (value) buffer += value;
      const lines = buffer.split("\\n");
      buffer = done ? "" : lines.pop();
      for (const line of lines) {
        if (!line.trim()) continue;
        const frame = JSON.parse(line);
        if (frame.type === "progress") {
          shards.add(frame.shard);
          renderProgress(frame, shards.size > 1);
          $("status").textContent = "Searching… iteration " + frame.iteration;
        } else if (frame.type === "result") {
          result = frame;
        } else if (frame.type === "error") {
          throw new Error(frame.code + ": " + frame.message);
        }
      }
      if (done) break;
    }
    if (!result) throw new Error("the stream ended without a result");
    $("hits").replaceChildren(...(result.hits || []).map((hit) => renderHit(hit, words)));
    renderStats(result, $("progress-list").children.length);
    markOverlap((result.hits || []).map((h) => h.id));
    const elapsed = Math.round(performance.now() - started);
    $("status").textContent = (result.hits || []).length ? "Results for " + JSON.stringify(query) + " (" + elapsed + " ms in this browser)" + (result.partial ? ", partial: some shards did not answer." : ".") : "No results.";
  } catch (error) {
    if (controller.signal.aborted) return;
    $("status").textContent = "";
    showError(error.message);
  } finally {
    if (running === controller) running = null;
  }
}

$("load").addEventListener("click", loadIndexes);
$("index").addEventListener("change", showDeclaredFields);
$("search").addEventListener("submit", search);
`;

export function renderSearchPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hypencoder Search</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<header>
<h1>Hypencoder Search</h1>
<p>Each query becomes a small neural network that scores the documents; watch the graph search converge.</p>
</header>
<form id="search">
  <details id="settings" open>
    <summary>API key and index</summary>
    <div class="settings">
      <label for="key">API key</label>
      <input id="key" name="key" type="password" autocomplete="off" spellcheck="false" placeholder="hyp_…" required>
      <button id="load" type="button">Load indexes</button>
      <label for="index">Index</label>
      <select id="index" name="index"></select>
    </div>
  </details>
  <div class="querybar">
    <input id="query" name="query" type="search" maxlength="2000" placeholder="e.g. command line text editor" aria-label="Query" required>
    <button type="submit">Search</button>
  </div>
  <div class="options">
    <label>Hits <input id="k" name="k" type="number" min="1" max="1000" value="10"></label>
    <label>Search <select id="mode" name="mode"><option value="approx">graph (approximate)</option><option value="exact">every document (exact)</option></select></label>
    <label>Walk <select id="variant" name="variant"><option value="proxy">proxy-seeded (default)</option><option value="best-first">best-first</option><option value="published">published</option></select></label>
    <label>Entry points <input id="entryPoints" name="entryPoints" type="number" min="1" placeholder="per walk"></label>
    <label>Fields <input id="fields" name="fields" value="title,text" placeholder="stored fields, comma-separated"></label>
  </div>
  <label class="filterbox">Filter <input id="filter" name="filter" spellcheck="false" autocomplete="off" placeholder='JSON, e.g. {"field": "section", "op": "eq", "value": "utils"}' aria-describedby="filter-fields"></label>
  <p id="filter-fields"></p>
</form>
<p id="status" role="status"></p>
<p id="error" role="alert" hidden></p>
<ul id="stats" hidden></ul>
<details id="progress" hidden open>
  <summary>Search progress: <span id="progress-count">0</span> update(s), streamed as the search ran</summary>
  <ol id="progress-list"></ol>
</details>
<ol id="hits"></ol>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
