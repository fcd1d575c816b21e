/** `export NAME=value` lines, as infra/s3/ceph-start.sh prints them, back into variables. */

/** Parses `export NAME=value` lines as bash's `printf %q` writes them. */
export function parseExports(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^export ([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = unquoteShell(m[2]);
  }
  return out;
}

function unquoteShell(s: string): string {
  if (s.startsWith("$'") && s.endsWith("'")) {
    const map: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", "'": "'", '"': '"' };
    return s.slice(2, -1).replace(/\\(.)/g, (_, c: string) => map[c] ?? c);
  }
  if (s.startsWith("'") && s.endsWith("'") && s.length >= 2) return s.slice(1, -1);
  return s.replace(/\\(.)/g, "$1");
}
