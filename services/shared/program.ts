/** What every program's main.ts shares: flags, exit codes, config errors, signals. */
import { Command, CommanderError } from 'commander';
import { ConfigError } from './config';
import { appVersion } from './version';

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

/** Exits 1 with the error's message; a ConfigError found after start-up still exits 2. */
export function fatal(program: string, err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`${program}: invalid configuration: ${err.message}\n`);
    process.exit(EXIT.USAGE);
  }
  process.stderr.write(`${program}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(EXIT.FAILED);
}

/** One environment variable as `--help` lists it. */
export interface VarHelp {
  name: string;
  /** As the operator would write it; undefined: unset by default (the meaning says what then). */
  default?: string;
  meaning: string;
}

/** The variables as an aligned table, for `--help`. */
export function formatVariables(vars: VarHelp[]): string {
  const width = Math.max(...vars.map((v) => v.name.length));
  const dflt = (v: VarHelp) => (v.default === undefined ? '' : ` (default: ${v.default})`);
  return vars.map((v) => `  ${v.name.padEnd(width)}  ${v.meaning}${dflt(v)}`).join('\n');
}

/**
 * A long-running program takes its configuration from the environment; its flags are only
 * --help and --version. Handled before any config is read or port opened: help and version
 * print and exit 0, anything else exits 2 naming the flag. Returns false when the program
 * must not start (it is exiting). `variables` is called only for --help.
 */
export function handleProgramFlags(opts: {
  program: string;
  description: string;
  variables: () => VarHelp[];
  argv?: string[];
}): boolean {
  const cmd = new Command(opts.program)
    .description(opts.description)
    .version(appVersion(), '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    // Checked below, so that the message can say how this program is configured instead.
    .allowExcessArguments(true)
    .addHelpText(
      'after',
      () =>
        '\nConfiguration is read from the environment (invalid values exit 2 naming the variable):\n' +
        formatVariables(opts.variables()) +
        '\n\nDetails: docs/configuration.md in the repository.\n',
    )
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
    });
  try {
    cmd.parse(opts.argv ?? process.argv.slice(2), { from: 'user' });
    if (cmd.args.length === 0) return true;
    process.stderr.write(
      `${opts.program}: unexpected argument "${cmd.args[0]}": the program takes no arguments; ` +
        'it is configured by environment variables (see --help)\n',
    );
    process.exit(EXIT.USAGE);
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    const code = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    // The help may be longer than a pipe takes at once: exit only once it is out.
    process.stdout.write('', () => process.exit(code));
    return false;
  }
}
