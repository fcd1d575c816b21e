import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { splitOf } from "../infra/dev/corpus/debian-split.ts";

// The committed corpus is what the trainer, the model card and the relevance benchmark read; this pins its
// documented shape (infra/dev/corpus/generate-debian-corpus.ts) so a regeneration cannot silently change it.
const CORPUS = new URL("../infra/dev/corpus/debian-main.jsonl.gz", import.meta.url);

const documentSchema = z.strictObject({
  id: z.string().min(1),
  title: z.string().min(1),
  text: z.string().min(1),
  metadata: z.strictObject({
    section: z.string().min(1),
    version: z.string().min(1),
    homepage: z.string().min(1).optional(),
    source: z.string().min(1),
    tags: z.array(z.string().regex(/^[a-z0-9-]+::[^\s,]+$/)),
    split: z.enum(["train", "dev", "test"]),
  }),
});

const documents = gunzipSync(readFileSync(CORPUS))
  .toString("utf8")
  .trimEnd()
  .split("\n")
  .map((line) => documentSchema.parse(JSON.parse(line)));

describe("debian-main corpus", () => {
  it("holds every package of bookworm main with a long description, sorted by name, unique", () => {
    expect(documents.length).toBeGreaterThan(60_000);
    for (let i = 1; i < documents.length; i++) expect(documents[i - 1]!.id < documents[i]!.id).toBe(true);
  });

  it("starts each text with the synopsis and adds the long description", () => {
    for (const d of documents) {
      expect(d.text.startsWith(`${d.title}\n`)).toBe(true);
      expect(d.text.length).toBeGreaterThan(d.title.length + 1);
    }
  });

  it("carries Debtags for a large share of the packages", () => {
    const tagged = documents.filter((d) => d.metadata.tags.length > 0).length;
    expect(tagged / documents.length).toBeGreaterThan(0.3);
    expect(documents.find((d) => d.id === "vim")?.metadata.tags).toContain("use::editing");
  });

  it("splits by source package, about 80/10/10, with no source in two splits", () => {
    const splitBySource = new Map<string, string>();
    const counts = { train: 0, dev: 0, test: 0 };
    for (const d of documents) {
      const { source, split } = d.metadata;
      expect(split).toBe(splitOf(source));
      expect(splitBySource.get(source) ?? split).toBe(split);
      splitBySource.set(source, split);
      counts[split]++;
    }
    expect(counts.train / documents.length).toBeCloseTo(0.8, 1);
    expect(counts.dev / documents.length).toBeCloseTo(0.1, 1);
    expect(counts.test / documents.length).toBeCloseTo(0.1, 1);
    const docSiblings = documents.filter((d) => d.id.endsWith("-doc") && d.metadata.source !== d.id);
    expect(docSiblings.length).toBeGreaterThan(100);
  });
});
