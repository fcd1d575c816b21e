/** Progress for long CLI runs, on stderr (stdout carries the JSONL results), at most once a second. */
export function progressReporter(label: string, intervalMs = 1000): (done: number, total: number) => void {
  let last = 0;
  const started = Date.now();
  return (done, total) => {
    const now = Date.now();
    if (done < total && now - last < intervalMs) return;
    last = now;
    const seconds = ((now - started) / 1000).toFixed(1);
    const percent = total > 0 ? Math.floor((100 * done) / total) : 100;
    process.stderr.write(`${label}: ${done}/${total} (${percent}%) ${seconds}s\n`);
  };
}

export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}
