/**
 * Generates the Debian corpora from bookworm main's package list and its English long descriptions, so
 * the demo, the trainer and the relevance benchmark read real English text without any download at run
 * time. The package list gives section, version, source and Debtags; the long descriptions live in the
 * archive's Translation-en file, joined by Description-md5.
 *
 *   apt-get update -o Acquire::Languages=en
 *   /usr/lib/apt/apt-helper cat-file /var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4 > /tmp/bookworm-main-Packages.txt
 *   /usr/lib/apt/apt-helper cat-file /var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_i18n_Translation-en.lz4 > /tmp/bookworm-main-Translation-en.txt
 *   node bin/run-ts.mjs infra/dev/corpus/generate-debian-corpus.ts /tmp/bookworm-main-Packages.txt /tmp/bookworm-main-Translation-en.txt
 *
 * writes `debian-main.jsonl.gz`: every package of main with a long description, sorted by name, each with
 * its train/dev/test split. The split hashes the *source* package, so binaries built from one source
 * (`foo`, `foo-doc`, `libfoo-dev`) always land in the same split. `--demo-count N` also rewrites the small
 * demo corpus `debian-packages.jsonl.gz` (every n-th package, without source/tags/split).
 *
 * Only packages from Debian's "main" archive area are used: their descriptions are part of DFSG-free
 * packages (see LICENSE.md beside this file).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { sourceName, splitOf } from "./debian-split.ts";

interface Stanza {
  Package?: string;
  Source?: string;
  Section?: string;
  Description?: string;
  "Description-md5"?: string;
  "Description-en"?: string;
  Homepage?: string;
  Version?: string;
  Tag?: string;
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

function debtags(tag: string | undefined): string[] {
  if (!tag) return [];
  return [...new Set(tag.split(/[,\s]+/).filter(Boolean))].sort();
}

/** Code-point order, not locale order, so the file is byte-identical on every machine. */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

{
  const args = process.argv.slice(2);
  const demoAt = args.indexOf("--demo-count");
  const demoCount = demoAt >= 0 ? Number(args.splice(demoAt, 2)[1]) : undefined;
  const [input = "/tmp/bookworm-main-Packages.txt", translations = "/tmp/bookworm-main-Translation-en.txt"] = args;

  const longDescriptions = new Map<string, string>();
  for (const t of parseStanzas(readFileSync(translations, "utf8"))) {
    if (t["Description-md5"] && t["Description-en"]) longDescriptions.set(t["Description-md5"], t["Description-en"]);
  }

  const seen = new Set<string>();
  const packages = parseStanzas(readFileSync(input, "utf8"))
    .filter((s) => s.Package && s.Section && !s.Section.includes("/") && longDescriptions.has(s["Description-md5"] ?? ""))
    .filter((s) => (seen.has(s.Package!) ? false : (seen.add(s.Package!), true)))
    .sort((a, b) => byCodePoint(a.Package!, b.Package!));

  const documents = packages.flatMap((s) => {
    const { title, text } = longDescription(longDescriptions.get(s["Description-md5"]!)!);
    if (text === title) return []; // a synopsis with no long description (e.g. a transitional stub)
    const source = sourceName(s);
    const document = {
      id: s.Package!,
      title,
      text,
      metadata: {
        section: s.Section!,
        version: s.Version,
        ...(s.Homepage ? { homepage: s.Homepage } : {}),
        source,
        tags: debtags(s.Tag),
        split: splitOf(source),
      },
    };
    return [document];
  });
  const full = new URL("./debian-main.jsonl.gz", import.meta.url);
  writeFileSync(full, gzipSync(`${documents.map((d) => JSON.stringify(d)).join("\n")}\n`, { level: 9 }));
  const counts = { train: 0, dev: 0, test: 0 };
  for (const d of documents) counts[d.metadata.split]++;
  console.error(`wrote ${documents.length} documents to ${full.pathname} (${JSON.stringify(counts)})`);

  if (demoCount !== undefined) {
    const step = Math.max(1, Math.floor(documents.length / demoCount));
    const demo = documents
      .filter((_, i) => i % step === 0)
      .slice(0, demoCount)
      .map(({ id, title, text, metadata: { section, version, homepage } }) =>
        JSON.stringify({ id, title, text, metadata: { section, version, ...(homepage ? { homepage } : {}) } }),
      );
    const out = new URL("./debian-packages.jsonl.gz", import.meta.url);
    writeFileSync(out, gzipSync(`${demo.join("\n")}\n`, { level: 9 }));
    console.error(`wrote ${demo.length} documents to ${out.pathname}`);
  }
}
