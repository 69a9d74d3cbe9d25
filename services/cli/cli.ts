/**
 * The CLI as a function: argv and I/O in, exit code out (main.ts only wires the process).
 * Parsing and validation happen before any connection; usage errors exit 2 naming the flag.
 */
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { Command as Commander, CommanderError, Option } from 'commander';
import {
  type Env,
  dialAddrSchema,
  formatHostPort,
  pairSchema,
  readVar,
  uuidSchema,
  ConfigError,
} from '../shared/config';
import { readClientTokenConfig } from '../shared/auth';
import { EXIT } from '../shared/program';
import { clientTlsVars, readClientTlsConfig } from '../shared/tls';
import { appVersion } from '../shared/version';
import type { CommandEnv, GlobalOptions } from './command';
import { controllerKick } from './commands/controller-kick';
import { controllerNodes } from './commands/controller-nodes';
import { controllerPrices } from './commands/controller-prices';
import { controllerStreams } from './commands/controller-streams';
import { controllerVersion } from './commands/controller-version';
import { nodeShutdown } from './commands/node-shutdown';
import { nodeStatus } from './commands/node-status';
import { watch } from './commands/watch';
import type { CliIo } from './io';
import { CliSession, ControllerUnreachable } from './session';

class UsageError extends Error {}

type Selected = (env: CommandEnv) => Promise<number>;

function validateEach(
  flag: string,
  values: string[],
  schema: typeof uuidSchema | typeof pairSchema,
): string[] {
  for (const v of values) {
    const r = schema.safeParse(v);
    if (!r.success)
      throw new UsageError(
        `${flag}: invalid value "${v}": ${r.error.issues[0]?.message ?? 'invalid'}`,
      );
  }
  return values;
}

function nodeTargets(o: { nodeUuid?: string[]; all?: boolean }): { nodeUuids: string[] } {
  const uuids = o.nodeUuid ?? [];
  if (o.all && uuids.length > 0)
    throw new UsageError('--all and --node-uuid cannot be used together');
  if (!o.all && uuids.length === 0)
    throw new UsageError('give --node-uuid UUID (repeatable) or --all');
  return { nodeUuids: validateEach('--node-uuid', uuids, uuidSchema) };
}

const collect = (v: string, prev: string[] = []) => [
  ...prev,
  ...v.split(',').filter((x) => x !== ''),
];

function buildProgram(io: CliIo, select: (name: string, run: Selected) => void): Commander {
  const program = new Commander('currency-cli')
    .description(
      'Send one command to the currency-nodes controller (or through it to nodes) and print the replies.',
    )
    .version(appVersion(), '-V, --version', 'print the CLI version')
    .option(
      '--controller <host:port>',
      'controller address (env CLI_CONTROLLER_ADDR, default localhost:5160)',
    )
    .option('--timeout <seconds>', 'how long to wait for the controller and the replies', '5')
    .option('--json', 'print one JSON document on stdout (watch: one JSON object per line)', false)
    .option(
      '--tls-ca <file>',
      'PEM CA that verifies the controller; turns TLS on (env CLI_TLS_CA_FILE)',
    )
    .option('--tls-cert <file>', 'PEM client certificate, for mutual TLS (env CLI_TLS_CERT_FILE)')
    .option('--tls-key <file>', 'PEM key of the client certificate (env CLI_TLS_KEY_FILE)')
    .option(
      '--tls-server-name <name>',
      'name to verify the controller certificate against (env CLI_TLS_SERVER_NAME)',
    )
    .option(
      '--token-file <file>',
      'file holding the CLI bearer token (env CLI_TOKEN_FILE or CLI_TOKEN)',
    )
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });

  const controller = program
    .command('controller')
    .description('commands the controller answers itself');
  controller
    .command('nodes')
    .description('connected nodes: uuid, name, known pairs, streaming pairs')
    .action(() => select('controller nodes', (env) => controllerNodes(env)));
  controller
    .command('kick')
    .description('disconnect nodes (they reconnect by themselves)')
    .argument('<uuid...>', 'node UUIDs')
    .action((uuids: string[]) => {
      const nodeUuids = validateEach('UUID', uuids, uuidSchema);
      select('controller kick', (env) => controllerKick(env, { nodeUuids }));
    });
  controller
    .command('version')
    .description('controller app version')
    .action(() => select('controller version', (env) => controllerVersion(env)));
  controller
    .command('streams')
    .description('every known pair -> the node(s) streaming it')
    .action(() => select('controller streams', (env) => controllerStreams(env)));
  controller
    .command('prices')
    .description('latest price per pair, its timestamp and the node it came from')
    .action(() => select('controller prices', (env) => controllerPrices(env)));

  const node = program.command('node').description('commands sent through the controller to nodes');
  const targetOptions = (c: Commander) =>
    c
      .addOption(
        new Option('--node-uuid <uuid>', 'target node (repeatable, or comma-separated)').argParser(
          collect,
        ),
      )
      .option('--all', 'every connected node', false);
  targetOptions(node.command('status').description('status of nodes')).action(
    (o: { nodeUuid?: string[]; all?: boolean }) => {
      const t = nodeTargets(o);
      select('node status', (env) => nodeStatus(env, t));
    },
  );
  targetOptions(
    node.command('shutdown').description('shut nodes down gracefully (they exit)'),
  ).action((o: { nodeUuid?: string[]; all?: boolean }) => {
    const t = nodeTargets(o);
    select('node shutdown', (env) => nodeShutdown(env, t));
  });

  program
    .command('watch')
    .description('live price updates until interrupted')
    .addOption(
      new Option('--pair <pair>', 'only this pair (repeatable, or comma-separated)').argParser(
        collect,
      ),
    )
    .action((o: { pair?: string[] }) => {
      const pairs = validateEach('--pair', o.pair ?? [], pairSchema);
      select('watch', (env) => watch(env, { pairs }));
    });
  return program;
}

interface RawGlobalOptions {
  controller?: string;
  timeout: string;
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

function globalOptions(raw: RawGlobalOptions, env: Env): GlobalOptions {
  const timeout = Number(raw.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0)
    throw new UsageError(
      `--timeout: invalid value "${raw.timeout}": must be a number of seconds > 0`,
    );
  let controller: string;
  if (raw.controller !== undefined) {
    const r = dialAddrSchema.safeParse(raw.controller);
    if (!r.success)
      throw new UsageError(
        `--controller: invalid value "${raw.controller}": ${r.error.issues[0]?.message}`,
      );
    controller = formatHostPort(r.data);
  } else {
    controller = formatHostPort(
      readVar(env, 'CLI_CONTROLLER_ADDR', dialAddrSchema, 'localhost:5160'),
    );
  }
  return {
    controller,
    timeoutMs: Math.round(timeout * 1000),
    json: raw.json,
    ...securityOptions(raw, env),
  };
}

/** Runs one CLI invocation. `argv` excludes the node binary and script path. */
export async function runCli(argv: string[], io: CliIo, env: Env = process.env): Promise<number> {
  let selected: { name: string; run: Selected } | undefined;
  const program = buildProgram(io, (name, run) => (selected = { name, run }));
  let opts: GlobalOptions;
  try {
    await program.parseAsync(argv, { from: 'user' });
    if (!selected) {
      io.err(program.helpInformation());
      return EXIT.USAGE;
    }
    opts = globalOptions(program.opts<RawGlobalOptions>(), env);
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
      const session = new CliSession({
        address: opts.controller,
        timeoutMs: opts.timeoutMs,
        tls: opts.tls,
        token: opts.token,
      });
      try {
        await session.open();
        const code = await run({ session, io, opts });
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
