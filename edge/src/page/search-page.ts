/**
 * The search page served at GET /: paste an API key, pick an index, search. Self-contained (no
 * external assets), so it works offline and under a strict Content-Security-Policy that allows
 * exactly this script and style by hash (./routes.ts). Results are rendered with textContent
 * only: hit fields are tenant data and must never be parsed as HTML.
 */

export const PAGE_STYLE = `
:root { font-family: system-ui, sans-serif; color-scheme: light dark; }
body { max-width: 48rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.4; }
form { display: grid; grid-template-columns: 8rem 1fr; gap: .5rem 1rem; align-items: center; }
form button { grid-column: 2; justify-self: start; }
input, select, button { font: inherit; padding: .3rem .5rem; }
#error { color: #b00020; font-weight: 600; }
#hits li { margin: .5rem 0; }
.score { font-variant-numeric: tabular-nums; opacity: .7; margin-left: .5rem; }
.text { display: block; white-space: pre-wrap; }
`;

export const PAGE_SCRIPT = `
"use strict";
const $ = (id) => document.getElementById(id);

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// Calls the public API with the pasted key; a JSON error body becomes "code: message".
async function api(path, init = {}) {
  const key = $("key").value.trim();
  if (!key) throw new Error("Paste an API key first.");
  const headers = { ...(init.headers || {}), authorization: "Bearer " + key };
  const response = await fetch(path, { ...init, headers });
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) {
    const error = body && body.error;
    throw new Error(error ? error.code + ": " + error.message : "HTTP " + response.status);
  }
  return body;
}

async function loadIndexes() {
  showError("");
  $("status").textContent = "Loading indexes…";
  const select = $("index");
  select.replaceChildren();
  try {
    const { indexes } = await api("/v1/indexes");
    for (const index of indexes) {
      const option = document.createElement("option");
      option.value = index.id;
      option.textContent = index.id + " (" + index.status + ", " + index.docCount + " docs)";
      select.append(option);
    }
    $("status").textContent = indexes.length ? indexes.length + " index(es)." : "This tenant has no indexes yet.";
  } catch (error) {
    $("status").textContent = "";
    showError(error.message);
  }
}

async function search(event) {
  event.preventDefault();
  showError("");
  const index = $("index").value;
  if (!index) return showError("Load the indexes and pick one first.");
  const fields = $("fields").value.split(",").map((f) => f.trim()).filter(Boolean);
  const body = { query: $("query").value, k: Number($("k").value) || 10, fields };
  $("status").textContent = "Searching…";
  $("hits").replaceChildren();
  try {
    const result = await api("/v1/indexes/" + encodeURIComponent(index) + "/search", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    for (const hit of result.hits || []) {
      const item = document.createElement("li");
      const id = document.createElement("strong");
      id.textContent = hit.id;
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = Number(hit.score).toFixed(4);
      item.append(id, score);
      for (const [name, value] of Object.entries(hit.fields || {})) {
        const field = document.createElement("span");
        field.className = "text";
        field.textContent = name + ": " + (typeof value === "string" ? value : JSON.stringify(value));
        item.append(field);
      }
      $("hits").append(item);
    }
    const ms = result.stats && result.stats.ms ? " in " + Math.round(result.stats.ms.total) + " ms" : "";
    $("status").textContent = (result.hits || []).length + " hit(s)" + ms + (result.partial ? " (partial: some shards did not answer)" : "") + ".";
  } catch (error) {
    $("status").textContent = "";
    showError(error.message);
  }
}

$("load").addEventListener("click", loadIndexes);
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
<h1>Hypencoder Search</h1>
<form id="search">
  <label for="key">API key</label>
  <input id="key" name="key" type="password" autocomplete="off" spellcheck="false" placeholder="hyp_…" required>
  <button id="load" type="button">Load indexes</button>
  <label for="index">Index</label>
  <select id="index" name="index"></select>
  <label for="query">Query</label>
  <input id="query" name="query" type="search" maxlength="2000" required>
  <label for="k">Hits</label>
  <input id="k" name="k" type="number" min="1" max="1000" value="10">
  <label for="fields">Fields</label>
  <input id="fields" name="fields" value="text" placeholder="stored fields to show, comma-separated">
  <button type="submit">Search</button>
</form>
<p id="status" role="status"></p>
<p id="error" role="alert" hidden></p>
<ol id="hits"></ol>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
