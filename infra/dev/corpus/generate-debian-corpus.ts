/**
 * Generates the dev stack's demo corpus from Debian's package descriptions, so the demo searches real
 * English text without any download at run time. The package list gives section and version; the
 * long descriptions live in the archive's Translation-en file, joined by Description-md5.
 *
 *   apt-get update -o Acquire::Languages=en && apt-cache dumpavail > /tmp/dumpavail.txt
 *   /usr/lib/apt/apt-helper cat-file /var/lib/apt/lists/*_bookworm_main_i18n_Translation-en.lz4 > /tmp/translation-en.txt
 *   node bin/run-ts.mjs infra/dev/corpus/generate-debian-corpus.ts /tmp/dumpavail.txt /tmp/translation-en.txt 3000
 *
 * Only packages from Debian's "main" section are used: their descriptions are part of DFSG-free
 * packages (see LICENSE.md beside this file). The selection is deterministic (every n-th package by name).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const [input = "/tmp/dumpavail.txt", translations = "/tmp/translation-en.txt", countArg = "3000"] = process.argv.slice(2);
const count = Number(countArg);

interface Stanza {
  Package?: string;
  Section?: string;
  Description?: string;
  "Description-md5"?: string;
  "Description-en"?: string;
  Homepage?: string;
  Version?: string;
}

function parseStanzas(text: string): Stanza[] {
  return text.split(/\n\n+/).map((block) => {
    const stanza: Record<string, string> = {};
    let field = "";
    for (const line of block.split("\n")) {
      if (/^\s/.test(line) && field) stanza[field] += `\n${line}`;
      else {
        const colon = line.indexOf(":");
        if (colon > 0) {
          field = line.slice(0, colon);
          stanza[field] = line.slice(colon + 1).trim();
        }
      }
    }
    return stanza as Stanza;
  });
}

/** Debian's long-description markup: " ." is a blank line; continuation lines start with a space. */
function longDescription(description: string): { title: string; text: string } {
  const [synopsis = "", ...rest] = description.split("\n");
  const paragraphs = rest
    .map((line) => line.replace(/^ /, ""))
    .map((line) => (line.trim() === "." ? "\n" : line.trim()))
    .join(" ")
    .split("\n")
    .map((p) => p.trim())
    .filter(Boolean);
  return { title: synopsis.trim(), text: [synopsis.trim(), ...paragraphs].join("\n") };
}

const longDescriptions = new Map<string, string>();
for (const t of parseStanzas(readFileSync(translations, "utf8"))) {
  if (t["Description-md5"] && t["Description-en"]) longDescriptions.set(t["Description-md5"], t["Description-en"]);
}

const seen = new Set<string>();
const packages = parseStanzas(readFileSync(input, "utf8"))
  .filter((s) => s.Package && s.Section && !s.Section.includes("/") && longDescriptions.has(s["Description-md5"] ?? ""))
  .filter((s) => (seen.has(s.Package!) ? false : (seen.add(s.Package!), true)))
  .sort((a, b) => a.Package!.localeCompare(b.Package!));
const step = Math.max(1, Math.floor(packages.length / count));
const lines = packages
  .filter((_, i) => i % step === 0)
  .slice(0, count)
  .map((s) => {
    const { title, text } = longDescription(longDescriptions.get(s["Description-md5"]!)!);
    return JSON.stringify({
      id: s.Package,
      title,
      text,
      metadata: { section: s.Section, version: s.Version, ...(s.Homepage ? { homepage: s.Homepage } : {}) },
    });
  });
const out = new URL("./debian-packages.jsonl.gz", import.meta.url);
writeFileSync(out, gzipSync(`${lines.join("\n")}\n`, { level: 9 }));
console.error(`wrote ${lines.length} documents from ${packages.length} main-section packages to ${out.pathname}`);
