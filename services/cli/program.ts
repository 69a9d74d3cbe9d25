/**
 * The CLI's commands and flags (commander), with an example section in every --help.
 * Actions only validate and select what to run; nothing connects here.
 */
import { Command as Commander, Option } from 'commander';
import { pairSchema, uuidSchema } from '../shared/config';
import { appVersion } from '../shared/version';
import type { CommandEnv } from './command';
import { controllerKick } from './commands/controller-kick';
import { controllerNodes } from './commands/controller-nodes';
import { controllerPrices } from './commands/controller-prices';
import { controllerStreams } from './commands/controller-streams';
import { controllerVersion } from './commands/controller-version';
import { nodeShutdown } from './commands/node-shutdown';
import { nodeStatus } from './commands/node-status';
import { watch } from './commands/watch';
import { completionScript, SHELLS } from './completion';
import { MAX_SECONDS, UsageError, parseSeconds } from './flags';
import type { CliIo } from './io';

export type Selected = (env: CommandEnv) => Promise<number>;
/** A command that runs without the controller (completion). */
export type Offline = () => number;

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

interface TargetFlags {
  nodeUuid?: string[];
  node?: string[];
  all?: boolean;
}

function nodeTargets(o: TargetFlags): { nodeUuids: string[] } {
  const values = [...(o.nodeUuid ?? []), ...(o.node ?? [])].map((v) => v.trim());
  if (o.all && values.length > 0)
    throw new UsageError('--all and --node-uuid cannot be used together');
  if (!o.all && values.length === 0)
    throw new UsageError('give --node-uuid UUID|PREFIX|NAME (repeatable) or --all');
  const blank = values.find((v) => v === '');
  if (blank !== undefined)
    throw new UsageError('--node-uuid: invalid value "": give a UUID, a UUID prefix or a name');
  return { nodeUuids: values };
}

const collect = (v: string, prev: string[] = []) => [
  ...prev,
  ...v.split(',').filter((x) => x !== ''),
];

const examples = (lines: string[]) =>
  '\nExamples:\n' + lines.map((l) => `  $ currency-cli ${l}`).join('\n') + '\n';

const DEFAULT_INTERVAL = '2';

/** -w/--watch and --interval, for the listing commands. */
function watchable(c: Commander): Commander {
  return c
    .option('-w, --watch', 'keep polling: redraw on change on a terminal, print changes on a pipe')
    .option(
      '--interval <seconds>',
      `with --watch, seconds between polls; decimal, 0.001 to ${MAX_SECONDS}`,
      DEFAULT_INTERVAL,
    );
}

export function buildProgram(
  io: CliIo,
  select: (name: string, run: Selected) => void,
  offline: (run: Offline) => void,
): Commander {
  const program = new Commander('currency-cli')
    .description(
      'Send one command to the currency-nodes controller (or through it to nodes) and print the replies.',
    )
    .version(appVersion(), '-V, --version', 'print the CLI version')
    .option(
      '--controller <host:port>',
      'controller address, or several comma-separated (leader election: the leader is found); env CLI_CONTROLLER_ADDR, default localhost:5160',
    )
    .option(
      '--timeout <seconds>',
      `how long to wait for the controller and the replies; decimal, fractions allowed (0.5), 0.001 to ${MAX_SECONDS}`,
      '5',
    )
    .option(
      '--reconnect-timeout <seconds>',
      'watch and -w: after a controller handover or a lost connection, how long to try to reach the leader again (0: not at all)',
      '30',
    )
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
    .addHelpText(
      'after',
      examples([
        'controller nodes',
        '--controller ctl.example:5160 --json controller streams',
        'node status --node edge-1',
        'watch --pair USD_HKD',
      ]) +
        '\nExit codes: 0 ok, 1 failed or incomplete, 2 bad usage, 3 controller unreachable\n' +
        '(or only a standby answered a command that needs the leader).\n' +
        'Colour only on a terminal, never with NO_COLOR set.\n' +
        'Control characters in names, pairs and messages from the controller are shown\n' +
        'escaped (\\x1b, \\t, \\n, ...); --json carries them exactly.\n',
    )
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });

  const controller = program
    .command('controller')
    .description('commands the controller answers itself');
  watchable(
    controller
      .command('nodes')
      .description('connected nodes: uuid, name, known pairs, streaming pairs, age'),
  )
    .addHelpText(
      'after',
      examples(['controller nodes', 'controller nodes -w', '--json controller nodes']),
    )
    .action((o: { watch?: boolean; interval: string }) => {
      const intervalMs = parseSeconds('--interval', o.interval);
      select('controller nodes', (env) => controllerNodes(env, { watch: o.watch, intervalMs }));
    });
  controller
    .command('kick')
    .description('disconnect nodes (they reconnect by themselves)')
    .argument('<uuid...>', 'node UUIDs')
    .addHelpText('after', examples(['controller kick 3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f']))
    .action((uuids: string[]) => {
      const nodeUuids = validateEach('UUID', uuids, uuidSchema);
      select('controller kick', (env) => controllerKick(env, { nodeUuids }));
    });
  controller
    .command('version')
    .description('controller app version')
    .addHelpText('after', examples(['controller version']))
    .action(() => select('controller version', (env) => controllerVersion(env)));
  watchable(
    controller
      .command('streams')
      .description('every known pair -> the node(s) streaming it; pairs with none are shown')
      .option('--check', 'exit 1 when a known pair has fewer streamers than desired', false),
  )
    .addHelpText(
      'after',
      examples([
        'controller streams',
        'controller streams --check && echo healthy',
        'controller streams -w',
      ]),
    )
    .action((o: { check: boolean; watch?: boolean; interval: string }) => {
      const intervalMs = parseSeconds('--interval', o.interval);
      select('controller streams', (env) =>
        controllerStreams(env, { check: o.check, watch: o.watch, intervalMs }),
      );
    });
  controller
    .command('prices')
    .description('latest price per pair, its timestamp and the node it came from')
    .addHelpText('after', examples(['controller prices', '--json controller prices']))
    .action(() => select('controller prices', (env) => controllerPrices(env)));

  const node = program.command('node').description('commands sent through the controller to nodes');
  const targetOptions = (c: Commander) =>
    c
      .addOption(
        new Option(
          '--node-uuid <node>',
          'target node: a UUID, a unique UUID prefix or a name (repeatable, or comma-separated)',
        ).argParser(collect),
      )
      .addOption(new Option('--node <node>', 'the same as --node-uuid').argParser(collect))
      .option('--all', 'every connected node', false);
  targetOptions(node.command('status').description('status of nodes'))
    .addHelpText(
      'after',
      examples([
        'node status --all',
        'node status --node edge-1',
        'node status --node-uuid 3f2b8c1e',
      ]),
    )
    .action((o: TargetFlags) => {
      const t = nodeTargets(o);
      select('node status', (env) => nodeStatus(env, t));
    });
  targetOptions(node.command('shutdown').description('shut nodes down gracefully (they exit)'))
    .addHelpText('after', examples(['node shutdown --node edge-1', 'node shutdown --all']))
    .action((o: TargetFlags) => {
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
    .addHelpText(
      'after',
      examples(['watch', 'watch --pair USD_HKD,BTC_USD', '--json watch | jq .price']),
    )
    .action((o: { pair?: string[] }) => {
      const pairs = validateEach('--pair', o.pair ?? [], pairSchema);
      select('watch', (env) => watch(env, { pairs }));
    });

  program
    .command('completion')
    .description(`print a shell completion script (${SHELLS.join(', ')})`)
    .argument('<shell>', SHELLS.join(' | '))
    .addHelpText(
      'after',
      examples([
        'completion bash > /etc/bash_completion.d/currency-cli',
        'completion zsh > ~/.currency-cli.zsh   # then in ~/.zshrc: source ~/.currency-cli.zsh',
        'completion fish > ~/.config/fish/completions/currency-cli.fish',
      ]),
    )
    .action((shell: string) => {
      if (!(SHELLS as readonly string[]).includes(shell))
        throw new UsageError(
          `completion: unknown shell "${shell}": give one of ${SHELLS.join(', ')}`,
        );
      offline(() => {
        io.out(completionScript(shell as (typeof SHELLS)[number], program));
        return 0;
      });
    });
  return program;
}
