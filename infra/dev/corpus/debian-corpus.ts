/**
 * The Debian corpus (`infra/dev/corpus/debian-main.jsonl.gz`, written by generate-debian-corpus.ts):
 * every bookworm-main package with its synopsis, long description, Debtags and train/dev/test split.
 * The dev stack's demo index, the relevance benchmark and the model-card test all read it through
 * here, so they see the same documents and the same known-item text.
 */
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { readJsonl } from "../../../gpu-worker/src/io/jsonl.ts";

export const DEBIAN_CORPUS = fileURLToPath(new URL("./debian-main.jsonl.gz", import.meta.url));

const packageLine = z.object({
  id: z.string().min(1),
  /** The synopsis (the Description field's first line). */
  title: z.string(),
  /** The synopsis, a newline, then the long description. */
  text: z.string().min(1),
  metadata: z.object({
    section: z.string(),
    version: z.string().optional(),
    homepage: z.string().optional(),
    source: z.string(),
    tags: z.array(z.string()),
    split: z.enum(["train", "dev", "test"]),
  }),
});
export type DebianPackage = z.infer<typeof packageLine>;

export async function readDebianCorpus(path = DEBIAN_CORPUS): Promise<DebianPackage[]> {
  const packages: DebianPackage[] = [];
  for await (const { value } of readJsonl(path, packageLine)) packages.push(value);
  return packages;
}

/**
 * The document text of the known-item collection: the long description without the synopsis.
 * The query is the synopsis, so a document that contains it verbatim would turn the task into
 * exact string matching (BM25 would find nearly every package by its own words); without it, a
 * system has to match a one-line summary to a paragraph that says the same thing differently.
 */
export function descriptionOnly(doc: Pick<DebianPackage, "text" | "title">): string {
  const newline = doc.text.indexOf("\n");
  const rest = newline < 0 ? "" : doc.text.slice(newline + 1).trim();
  // A long description that is empty still leaves the package findable by something; its
  // synopsis is the only text there is.
  return rest === "" ? doc.title : rest;
}

/** Whether a package can be a known-item query: it has a long description distinct from its synopsis. */
export function hasLongDescription(doc: Pick<DebianPackage, "text" | "title">): boolean {
  return descriptionOnly(doc) !== doc.title;
}

/**
 * The demo's first, quick part: the programs that Debtags call applications or utilities (about 3,100
 * packages), which is what a person searching for software wants to find first; libraries, data and
 * documentation packages come with the full corpus.
 */
export function isDemoPreview(doc: Pick<DebianPackage, "metadata">): boolean {
  const tags = doc.metadata.tags;
  return tags.includes("role::program") && (tags.includes("scope::application") || tags.includes("scope::utility"));
}
