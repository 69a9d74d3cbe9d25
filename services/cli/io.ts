import { shown } from './format';

/** What a CLI command may touch: its output streams and, for `watch`, a stop signal. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Aborted on SIGINT/SIGTERM; long-running commands end cleanly on it. */
  signal: AbortSignal;
  /** stdout is a terminal (colour, redraw in place); absent: not. */
  tty?: boolean;
  /**
   * Resolves once stdout has room again: what `out` wrote is with the OS, or little enough
   * is left waiting. A command that prints without bound (a paged `controller nodes`)
   * waits for it between pages, so a slow reader holds the listing back instead of the
   * output piling up in memory. Absent: no waiting.
   */
  drained?(): Promise<void>;
}

/** The process's streams, plus what main.ts needs to exit only once the output is out. */
export interface ProcessIo extends CliIo {
  /**
   * Resolves once everything written to stdout has been handed to the OS (a pipe whose
   * reader is slow may take a while), with the write error if the reader went away.
   */
  flush(): Promise<Error | undefined>;
}

/**
 * stdout to a pipe is asynchronous: a write returns before the bytes leave, so the CLI
 * must not exit until `flush()` resolves. A failed write (EPIPE: the reader closed) stops
 * further output and aborts `stop`, so a `watch` ends instead of writing into the void.
 */
export function processIo(stop: AbortController): ProcessIo {
  let failure: Error | undefined;
  process.stdout.on('error', (err: Error) => {
    failure ??= err;
    stop.abort();
  });
  // A closed stderr must not crash the CLI either; there is nowhere left to report it.
  process.stderr.on('error', () => {});
  return {
    out: (t) => {
      if (failure === undefined) process.stdout.write(t);
    },
    err: (t) => process.stderr.write(t),
    signal: stop.signal,
    tty: process.stdout.isTTY === true,
    drained: () =>
      new Promise((resolve) => {
        const out = process.stdout;
        if (failure !== undefined || out.destroyed || !out.writableNeedDrain) return resolve();
        const done = () => {
          out.off('drain', done);
          out.off('close', done);
          stop.signal.removeEventListener('abort', done);
          resolve();
        };
        out.on('drain', done);
        out.on('close', done);
        stop.signal.addEventListener('abort', done);
      }),
    flush: () =>
      new Promise((resolve) => {
        if (failure !== undefined || process.stdout.destroyed) return resolve(failure);
        // Writes complete in order: the callback of an empty write runs after all before it.
        process.stdout.write('', (err) => resolve(failure ?? err ?? undefined));
      }),
  };
}

/**
 * Plain aligned columns, like kubectl: a header row, then one row per item. Cells come
 * from the wire: their control characters are shown escaped (format.ts `shown`).
 */
export function table(headers: string[], cellRows: string[][]): string {
  const rows = cellRows.map((r) => r.map(shown));
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
