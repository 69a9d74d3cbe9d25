/**
 * The CLI as a function: argv and I/O in, exit code out (main.ts only wires the process).
 * Parsing and validation happen before any connection; usage errors exit 2 naming the flag.
 */
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { CommanderError } from 'commander';
import {
  type Env,
  dialAddrSchema,
  formatHostPort,
  listOf,
  readVar,
  ConfigError,
} from '../shared/config';
import { readClientTokenConfig } from '../shared/auth';
import { EXIT } from '../shared/program';
import { systemScheduler } from '../shared/scheduler';
import { clientTlsVars, readClientTlsConfig } from '../shared/tls-client';
import type { GlobalOptions } from './command';
import { shownLines } from './format';
import { UsageError, parseSeconds } from './flags';
import type { CliIo } from './io';
import { type Offline, type Selected, buildProgram } from './program';
import { CliSession, ControllerUnreachable } from './session';

interface RawGlobalOptions {
  controller?: string;
  timeout: string;
  reconnectTimeout: string;
  json: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
  tokenFile?: string;
}

/** TLS and token: each flag overrides its variable, and an error names whichever was used. */
function securityOptions(raw: RawGlobalOptions, env: Env): Pick<GlobalOptions, 'tls' | 'token'> {
  const vars = clientTlsVars('CLI');
  // A value that is missing altogether is named both ways: either would supply it.
  const pick = (flag: string | undefined, flagName: string, variable: string) =>
    flag !== undefined
      ? { value: flag, name: flagName }
      : env[variable] !== undefined && env[variable].trim() !== ''
        ? { value: env[variable], name: variable }
        : { value: undefined, name: `${flagName} (or ${variable})` };
  const ca = pick(raw.tlsCa, '--tls-ca', vars.ca);
  const cert = pick(raw.tlsCert, '--tls-cert', vars.cert);
  const key = pick(raw.tlsKey, '--tls-key', vars.key);
  const serverName = pick(raw.tlsServerName, '--tls-server-name', vars.serverName);
  const tls = readClientTlsConfig(
    { ca: ca.value, cert: cert.value, key: key.value, serverName: serverName.value },
    { ca: ca.name, cert: cert.name, key: key.name, serverName: serverName.name },
  );
  const token =
    raw.tokenFile !== undefined
      ? readClientTokenConfig({ file: raw.tokenFile }, { token: 'CLI_TOKEN', file: '--token-file' })
      : readClientTokenConfig(
          { token: env.CLI_TOKEN, file: env.CLI_TOKEN_FILE },
          { token: 'CLI_TOKEN', file: 'CLI_TOKEN_FILE' },
        );
  return { tls, token };
}

function globalOptions(raw: RawGlobalOptions, env: Env, io: CliIo): GlobalOptions {
  const timeoutMs = parseSeconds('--timeout', raw.timeout);
  const reconnectMs =
    raw.reconnectTimeout === '0' ? 0 : parseSeconds('--reconnect-timeout', raw.reconnectTimeout);
  // One address, or several separated by commas (controllers under leader election).
  let controller: string;
  if (raw.controller !== undefined) {
    const each = raw.controller
      .split(',')
      .map((a) => a.trim())
      .filter((a) => a !== '');
    controller = (each.length > 0 ? each : [raw.controller])
      .map((a) => {
        const r = dialAddrSchema.safeParse(a);
        if (!r.success)
          throw new UsageError(`--controller: invalid value "${a}": ${r.error.issues[0]?.message}`);
        return formatHostPort(r.data);
      })
      .join(',');
  } else {
    controller = readVar(env, 'CLI_CONTROLLER_ADDR', listOf(dialAddrSchema), 'localhost:5160')
      .map(formatHostPort)
      .join(',');
  }
  return {
    controller,
    timeoutMs,
    reconnectMs,
    json: raw.json,
    // https://no-color.org: set and not empty turns colour off.
    colour: io.tty === true && !env.NO_COLOR,
    ...securityOptions(raw, env),
  };
}

/** Runs one CLI invocation. `argv` excludes the node binary and script path. */
export async function runCli(
  argv: string[],
  rawIo: CliIo,
  env: Env = process.env,
): Promise<number> {
  // stderr carries only lines of text: a wire string in a message, even one a command did
  // not escape, cannot command the terminal.
  const io: CliIo = { ...rawIo, err: (t) => rawIo.err(shownLines(t)) };
  let selected: { name: string; run: Selected } | undefined;
  let offline: Offline | undefined;
  const program = buildProgram(
    io,
    (name, run) => (selected = { name, run }),
    (run) => (offline = run),
  );
  let opts: GlobalOptions;
  try {
    await program.parseAsync(argv, { from: 'user' });
    if (offline) return offline();
    if (!selected) {
      io.err(program.helpInformation());
      return EXIT.USAGE;
    }
    opts = globalOptions(program.opts<RawGlobalOptions>(), env, io);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are not errors.
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        (err.code === 'commander.help' && err.exitCode === 0)
      )
        return EXIT.OK;
      return EXIT.USAGE;
    }
    if (err instanceof UsageError || err instanceof ConfigError) {
      io.err(`currency-cli: ${err.message}\n`);
      return EXIT.USAGE;
    }
    throw err;
  }

  // One command = one trace: the stream to the controller and every request span are
  // children of this span, and the controller and nodes continue it.
  const run = selected.run;
  const command = selected.name;
  return trace
    .getTracer('currency-cli')
    .startActiveSpan(`currency-cli ${command}`, async (span) => {
      const scheduler = systemScheduler;
      const session = new CliSession({
        address: opts.controller,
        timeoutMs: opts.timeoutMs,
        tls: opts.tls,
        token: opts.token,
        scheduler,
      });
      try {
        await session.open();
        let code = await run({ session, io, opts, scheduler });
        // A standby answered a command that needs the leader (and no address given leads):
        // the controller that can serve was not reached.
        if (code === EXIT.FAILED && session.standbyRefusal() !== undefined) code = EXIT.UNREACHABLE;
        span.setAttribute('process.exit.code', code);
        if (code !== EXIT.OK)
          span.setStatus({ code: SpanStatusCode.ERROR, message: `exit ${code}` });
        return code;
      } catch (err) {
        if (err instanceof ControllerUnreachable) {
          io.err(`currency-cli: ${err.message}\n`);
          span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
          return EXIT.UNREACHABLE;
        }
        throw err;
      } finally {
        session.close();
        span.end();
      }
    });
}
