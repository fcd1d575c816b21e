/** JSONL on stdout, respecting back-pressure so a pipe into `head` or a slow consumer is safe. */
export function writeLine(value: unknown): Promise<void> | void {
  if (process.stdout.write(`${JSON.stringify(value)}\n`)) return;
  return new Promise((resolve) => process.stdout.once("drain", () => resolve()));
}
