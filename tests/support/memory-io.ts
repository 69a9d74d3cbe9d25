/**
 * A CliIo writing to memory: what a CLI command (or the whole CLI, tests/support/cli-runner.ts)
 * writes, kept for the test to read, and Ctrl-C as `abort()`.
 */
import type { CliIo } from '../../services/cli/io';

export interface MemoryIo {
  io: CliIo;
  /** Everything written to stdout / stderr so far. */
  out(): string;
  err(): string;
  /** Each write, in order (for tests that count them). */
  writes: { out: string[]; err: string[] };
  /** Aborts `io.signal`, as Ctrl-C does. */
  abort(): void;
}

export interface MemoryIoOptions {
  /** stdout is a terminal (absent: a pipe). */
  tty?: boolean;
  /** Aborts the signal once everything written to stdout so far satisfies this. */
  stopWhen?: (out: string) => boolean;
}

export function memoryIo(o: MemoryIoOptions = {}): MemoryIo {
  const writes = { out: [] as string[], err: [] as string[] };
  let out = '';
  let err = '';
  const stop = new AbortController();
  const io: CliIo = {
    out: (t) => {
      writes.out.push(t);
      out += t;
      if (o.stopWhen?.(out)) stop.abort();
    },
    err: (t) => {
      writes.err.push(t);
      err += t;
    },
    signal: stop.signal,
  };
  if (o.tty !== undefined) io.tty = o.tty;
  return { io, out: () => out, err: () => err, writes, abort: () => stop.abort() };
}
