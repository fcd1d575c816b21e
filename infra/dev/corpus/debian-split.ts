/** The corpus split, shared by the generator and the test that checks the committed corpus. */
import { createHash } from "node:crypto";

export type Split = "train" | "dev" | "test";

/** `Source: foo (1.2-3)` names the source package with an optional version; without the field it is the package itself. */
export function sourceName(stanza: { Package?: string; Source?: string }): string {
  return (stanza.Source ?? stanza.Package ?? "").replace(/\s*\(.*\)\s*$/, "").trim();
}

/** ~80/10/10 by the first 32 bits of SHA-256 of the source name: stable across runs, machines and archive updates. */
export function splitOf(source: string): Split {
  const bucket = createHash("sha256").update(source).digest().readUInt32BE(0) % 100;
  return bucket < 80 ? "train" : bucket < 90 ? "dev" : "test";
}
