/** What a CLI command may touch: its output streams and, for `watch`, a stop signal. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Aborted on SIGINT/SIGTERM; long-running commands end cleanly on it. */
  signal: AbortSignal;
}

export function processIo(signal: AbortSignal): CliIo {
  return {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    signal,
  };
}

/** Plain aligned columns, like kubectl: a header row, then one row per item. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}
