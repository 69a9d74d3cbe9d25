/** What every program's main.ts shares: exit codes, config errors, signals. */
import { ConfigError } from './config';

export const EXIT = {
  OK: 0,
  /** The command ran but failed or was incomplete. */
  FAILED: 1,
  /** Bad usage or bad configuration. */
  USAGE: 2,
  /** Could not reach the controller. */
  UNREACHABLE: 3,
} as const;

/** Reads config; on a ConfigError prints `program: VARIABLE: problem` and exits 2. */
export function loadConfigOrExit<T>(program: string, load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${program}: invalid configuration: ${err.message}\n`);
      process.exit(EXIT.USAGE);
    }
    throw err;
  }
}

/** Runs `stop` once on SIGTERM or SIGINT, then exits 0; a second signal exits at once. */
export function onShutdownSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(EXIT.FAILED);
    stopping = true;
    stop().then(
      () => process.exit(EXIT.OK),
      (err: unknown) => {
        process.stderr.write(`shutdown on ${signal} failed: ${String(err)}\n`);
        process.exit(EXIT.FAILED);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

export function fatal(program: string, err: unknown): never {
  process.stderr.write(`${program}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(EXIT.FAILED);
}
