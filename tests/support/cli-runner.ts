/**
 * `currency-cli` in this process (services/cli/cli.ts `runCli`): what main.ts does, minus
 * the process. stdout and stderr are kept; `stop()` is what SIGINT does to a `watch`.
 */
import { runCli } from '../../services/cli/cli';
import { memoryIo } from './memory-io';

export interface InProcessCliOptions {
  /** The CLI's environment (not the test's: `CLI_*` variables set there must not leak in). */
  env?: Readonly<Record<string, string | undefined>>;
  /** stdout is a terminal (colour, redraw in place). */
  tty?: boolean;
  /** Stops the run (as SIGINT) once stdout so far satisfies it. */
  stopWhen?: (out: string) => boolean;
  /** Stops the run (as SIGINT) after this long. */
  stopAfterMs?: number;
}

export interface InProcessCli {
  /** stdout so far. */
  out(): string;
  /** stderr so far. */
  err(): string;
  /** What SIGINT does: long-running commands end cleanly. */
  stop(): void;
  /** The exit code. */
  readonly code: Promise<number>;
}

/** Starts `currency-cli argv`; see `runInProcess` to wait for the end. */
export function startInProcess(argv: string[], opts: InProcessCliOptions = {}): InProcessCli {
  const m = memoryIo({ tty: opts.tty, stopWhen: opts.stopWhen });
  const timer =
    opts.stopAfterMs === undefined ? undefined : setTimeout(() => m.abort(), opts.stopAfterMs);
  const code = runCli(argv, m.io, opts.env ?? {}).finally(() => clearTimeout(timer));
  return { out: m.out, err: m.err, stop: m.abort, code };
}

/** Runs `currency-cli argv` to its end: the exit code and everything written. */
export async function runInProcess(
  argv: string[],
  opts: InProcessCliOptions = {},
): Promise<{ code: number; out: string; err: string }> {
  const cli = startInProcess(argv, opts);
  const code = await cli.code;
  return { code, out: cli.out(), err: cli.err() };
}
