/**
 * The CLI for people (issue 15), against a scripted controller: names next to UUIDs,
 * --node-uuid by name or prefix, AGE, -w/--watch, colour rules, streams --check and
 * shell completion.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { StreamFromCli, StreamToCli } from '../../services/gen/protobuf/currency_nodes';
import { type MessageName, type MessageOf, pack, unpack } from '../../services/shared/any';
import { createServer } from 'node:net';
import { type InProcessCliOptions, runInProcess } from '../support/cli-runner';
import { makeCertDir } from '../support/certs';
import { FakeController } from '../support/fake-controller';

jest.setTimeout(30_000);

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const B = '3f2bffff-0000-4000-8000-000000000001';
const C = '9a9a9a9a-0000-4000-8000-000000000002';
const NOW_S = Math.floor(Date.now() / 1000);

interface FakeNode {
  nodeUuid: string;
  name: string;
  connectedSecondsAgo: number;
}
let nodes: FakeNode[] = [];
let streams: {
  currencyPair: string;
  nodeUuids: string[];
  capableNodes: number;
  desiredStreams: number;
}[] = [];
/** Called after each `controller nodes` answer (watch tests change the list between polls). */
let afterList: () => void = () => {};
const received: StreamFromCli[] = [];
let fake: FakeController;

function frame<N extends MessageName>(
  to: StreamFromCli,
  name: N,
  message: MessageOf<N>,
  nodeUuid?: string,
): StreamToCli {
  return { streamId: to.streamId, nodeUuid, traceContext: {}, response: pack(name, message) };
}

beforeAll(async () => {
  fake = await FakeController.start(0, {
    cli: (f, send) => {
      received.push(f);
      const c = unpack(f.command);
      const name = c.ok ? c.value.name : '';
      // A controller that lists nodes in one reply only (no ControllerListNodesV2Req).
      if (name === 'ControllerListNodesV2Req') {
        send(frame(f, 'UnknownCommandV1Notify', { command: f.command }));
      } else if (name === 'ControllerListNodesV1Req') {
        send(
          frame(f, 'ControllerListNodesV1Reply', {
            nodeUuids: nodes.map((n) => n.nodeUuid),
            nodes: nodes.map((n) => ({
              nodeUuid: n.nodeUuid,
              name: n.name,
              knownCurrencyPairs: ['USD_HKD'],
              streamingCurrencyPairs: [],
              connectedAt: { seconds: NOW_S - n.connectedSecondsAgo, nanos: 0 },
              peer: '',
            })),
          }),
        );
        afterList();
      } else if (name === 'ControllerStreamsV1Req') {
        send(frame(f, 'ControllerStreamsV1Reply', { pairs: streams }));
      } else if (name === 'ControllerPricesV1Req') {
        send(
          frame(f, 'ControllerPricesV1Reply', {
            prices: [
              {
                currencyPair: 'USD_HKD',
                price: 7.8,
                priceUpdatedAt: { seconds: NOW_S, nanos: 0 },
                nodeUuid: A,
              },
            ],
          }),
        );
      } else if (name === 'ControllerWatchPricesV2Req') {
        send(frame(f, 'ControllerWatchPricesV1Reply', { currencyPairs: [] }));
        send(
          frame(f, 'ControllerPriceUpdatesV1Notify', {
            prices: [
              {
                currencyPair: 'USD_HKD',
                price: 7.8,
                priceUpdatedAt: { seconds: NOW_S, nanos: 0 },
                nodeUuid: A,
              },
            ],
          }),
        );
      } else if (name === 'NodeStatusV1Req') {
        send(
          frame(f, 'CliResponseCountV1Notify', {
            expectedResponses: f.nodeUuids.length,
            nodeUuids: f.nodeUuids,
            unknownNodeUuids: [],
          }),
        );
        for (const u of f.nodeUuids)
          send(
            frame(
              f,
              'NodeStatusV1Reply',
              {
                appVersion: '1.0.0',
                connectedControllerServer: 'c:5160',
                connectedAt: { seconds: NOW_S, nanos: 0 },
                streamStates: [],
                config: { uuid: u, name: 'x', verboseLog: false, controllerServers: [] },
              },
              u,
            ),
          );
      }
    },
  });
});
afterAll(() => fake.stop());
beforeEach(() => {
  nodes = [
    { nodeUuid: A, name: 'edge-1', connectedSecondsAgo: 30 },
    { nodeUuid: B, name: 'edge-2', connectedSecondsAgo: 3 * 3600 },
    { nodeUuid: C, name: 'core', connectedSecondsAgo: 5 * 86400 },
  ];
  streams = [
    { currencyPair: 'USD_HKD', nodeUuids: [A, B], capableNodes: 2, desiredStreams: 2 },
    { currencyPair: 'BTC_USD', nodeUuids: [C], capableNodes: 1, desiredStreams: 1 },
  ];
  afterList = () => {};
  received.length = 0;
});

function cli(argv: string[], opts: InProcessCliOptions = {}) {
  return runInProcess(['--timeout', '10', ...argv], {
    ...opts,
    env: { CLI_CONTROLLER_ADDR: fake.address, ...opts.env },
  });
}

const sentTo = (command: MessageName) =>
  received
    .filter((f) => {
      const c = unpack(f.command);
      return c.ok && c.value.name === command;
    })
    .map((f) => f.nodeUuids);

describe('names next to UUIDs', () => {
  test('controller streams shows each streamer as UUID (name); --json adds nodes[].name', async () => {
    const r = await cli(['controller', 'streams']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`${A} (edge-1), ${B} (edge-2)`);
    const j = JSON.parse((await cli(['--json', 'controller', 'streams'])).out) as {
      nodes: { nodeUuid: string; name: string }[];
    }[];
    expect(j[0]!.nodes).toEqual([
      { nodeUuid: A, name: 'edge-1' },
      { nodeUuid: B, name: 'edge-2' },
    ]);
  });

  test('controller prices has a NAME column; --json a nodeName', async () => {
    const r = await cli(['controller', 'prices']);
    expect(r.out.split('\n')[0]).toMatch(/NODE +NAME$/);
    expect(r.out).toContain(`${A}  edge-1`);
    const j = JSON.parse((await cli(['--json', 'controller', 'prices'])).out) as {
      nodeName: string;
    }[];
    expect(j[0]!.nodeName).toBe('edge-1');
  });

  test('watch names the node of each update', async () => {
    const r = await cli(['watch'], { stopWhen: (o) => o.includes('\n') });
    expect(r.code).toBe(0);
    expect(r.out).toContain(`${A} (edge-1)`);
  });

  test('names are a help, not a need: a controller without node details still works', async () => {
    nodes = [];
    const r = await cli(['controller', 'streams']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`${A}, ${B}`);
  });
});

describe('--node-uuid by name or UUID prefix', () => {
  test.each([
    ['a name', 'edge-2', B],
    ['a UUID prefix', '9a9a', C],
    ['an upper-case UUID prefix', '3F2B8', A],
    ['--node, the short form', 'core', C],
  ])('%s resolves to the one node it names', async (what, value, uuid) => {
    const flag = what.startsWith('--node,') ? '--node' : '--node-uuid';
    const r = await cli(['node', 'status', flag, value]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(sentTo('NodeStatusV1Req')).toEqual([[uuid]]);
  });

  test('an ambiguous prefix exits 2 listing the candidates, and sends nothing', async () => {
    const r = await cli(['node', 'status', '--node-uuid', '3f2b']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('"3f2b" matches 2 nodes');
    expect(r.err).toContain(`${A} (edge-1)`);
    expect(r.err).toContain(`${B} (edge-2)`);
    expect(sentTo('NodeStatusV1Req')).toEqual([]);
  });

  test('a value nothing matches is reported, exit 1, and never sent as an empty list (= all)', async () => {
    const r = await cli(['--json', 'node', 'shutdown', '--node-uuid', 'nope']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('unknown node "nope": no connected node has that name or UUID prefix');
    expect((JSON.parse(r.out) as { unmatchedNodes: string[] }).unmatchedNodes).toEqual(['nope']);
    expect(sentTo('NodeShutdownV1Req')).toEqual([]);
  });

  test('full UUIDs need no lookup', async () => {
    const r = await cli(['node', 'status', '--node-uuid', C]);
    expect(r.code).toBe(0);
    expect(sentTo('ControllerListNodesV1Req')).toEqual([]);
  });
});

test('controller nodes shows an AGE column', async () => {
  const r = await cli(['controller', 'nodes']);
  const lines = r.out.trimEnd().split('\n');
  expect(lines[0]).toMatch(/ AGE$/);
  expect(lines[1]).toMatch(/ 3\ds$/); // 30 s ago, give or take the test's own seconds
  expect(lines[2]).toMatch(/ 3h$/);
  expect(lines[3]).toMatch(/ 5d$/);
});

describe('controller streams --check', () => {
  test('exits 0 when every pair has its desired streamers', async () => {
    const r = await cli(['controller', 'streams', '--check']);
    expect(r.code).toBe(0);
  });

  test('exits 1 naming the pairs that have fewer, with --json too', async () => {
    streams[0]!.nodeUuids = [A];
    streams.push({ currencyPair: 'EUR_USD', nodeUuids: [], capableNodes: 0, desiredStreams: 1 });
    for (const json of [false, true]) {
      const r = await cli([...(json ? ['--json'] : []), 'controller', 'streams', '--check']);
      expect(r.code).toBe(1);
      expect(r.err).toContain('2 pair(s) have fewer streamers than desired');
      expect(r.err).toContain('USD_HKD 1/2 (2 capable)');
      expect(r.err).toContain('EUR_USD 0/1 (0 capable)');
    }
    expect((await cli(['controller', 'streams'])).code).toBe(0); // without --check: a listing
  });
});

describe('colour', () => {
  const RED = '\x1b[31m';
  beforeEach(() => {
    streams.push({ currencyPair: 'EUR_USD', nodeUuids: [], capableNodes: 0, desiredStreams: 1 });
  });
  test('on a terminal, a pair with no streamer is red', async () => {
    const r = await cli(['controller', 'streams'], { tty: true });
    expect(r.out).toContain(`${RED}EUR_USD`);
  });
  test('never on a pipe', async () => {
    const r = await cli(['controller', 'streams']);
    expect(r.out).not.toContain('\x1b[');
  });
  test('never with NO_COLOR', async () => {
    const r = await cli(['controller', 'streams'], { tty: true, env: { NO_COLOR: '1' } });
    expect(r.out).not.toContain('\x1b[');
  });
});

describe('-w/--watch', () => {
  test('on a pipe: the table once, then one line per change', async () => {
    let lists = 0;
    afterList = () => {
      lists++;
      if (lists === 2) nodes = nodes.filter((n) => n.nodeUuid !== B); // B goes
      if (lists === 3)
        nodes = [
          ...nodes,
          { nodeUuid: '11111111-2222-4333-8444-555555555555', name: 'new', connectedSecondsAgo: 0 },
        ];
    };
    const r = await cli(['controller', 'nodes', '-w', '--interval', '0.05'], {
      stopWhen: (o) => o.includes('ADDED'),
    });
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^UUID +NAME/);
    expect(lines.filter((l) => l.startsWith('UUID'))).toHaveLength(1);
    expect(r.out).toMatch(new RegExp(`GONE  ${B}  edge-2`));
    expect(r.out).toMatch(/ADDED  11111111-2222-4333-8444-555555555555  new/);
  });

  test('an unchanged listing prints nothing more (AGE growing is not a change)', async () => {
    let lists = 0;
    afterList = () => {
      lists++;
      if (lists === 4)
        streams = [
          ...streams,
          { currencyPair: 'X_Y', nodeUuids: [], capableNodes: 0, desiredStreams: 1 },
        ];
    };
    const r = await cli(['controller', 'streams', '--watch', '--interval', '0.02'], {
      stopWhen: (o) => o.includes('X_Y'),
    });
    expect(r.code).toBe(0);
    expect(r.out.trimEnd().split('\n')).toHaveLength(1 + 2 + 1); // header, 2 pairs, 1 change
    expect(lists).toBeGreaterThanOrEqual(4);
  });

  test('on a terminal: the screen is cleared and the table redrawn', async () => {
    let lists = 0;
    afterList = () => {
      lists++;
      if (lists === 2) nodes = nodes.slice(1);
    };
    const r = await cli(['controller', 'nodes', '-w', '--interval', '0.05'], {
      tty: true,
      stopWhen: (o) => o.split('\x1b[2J').length === 3,
    });
    expect(r.code).toBe(0);
    const screens = r.out.split('\x1b[H\x1b[2J').filter((s) => s !== '');
    expect(screens).toHaveLength(2);
    expect(screens[1]).not.toContain(A);
  });

  test('--json: one document per line, per change', async () => {
    let lists = 0;
    afterList = () => {
      lists++;
      if (lists === 2) nodes = nodes.slice(1);
    };
    const r = await cli(['--json', 'controller', 'nodes', '-w', '--interval', '0.05'], {
      stopWhen: (o) => o.split('\n').length === 3,
    });
    const docs = r.out
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown[]);
    expect(docs.map((d) => d.length)).toEqual([3, 2]);
  });
});

describe('completion', () => {
  const run = promisify(execFile);

  /** What bash completes for `words` (the last one being completed). */
  async function complete(script: string, words: string[]): Promise<string[]> {
    const dir = mkdtempSync(join(tmpdir(), 'cli-completion-'));
    const file = join(dir, 'c.bash');
    writeFileSync(file, script);
    const arr = ['currency-cli', ...words].map((w) => `'${w}'`).join(' ');
    const { stdout } = await run('bash', [
      '-c',
      `source ${file}; COMP_WORDS=(${arr}); COMP_CWORD=${words.length}; _currency_cli; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ]);
    return stdout.split('\n').filter((l) => l !== '');
  }

  test('bash completes commands, subcommands and their flags, skipping flag values', async () => {
    const r = await cli(['completion', 'bash']);
    expect(r.code).toBe(0);
    expect(received).toHaveLength(0); // no controller needed
    expect(await complete(r.out, ['con'])).toEqual(['controller']);
    expect(await complete(r.out, ['controller', ''])).toEqual(
      expect.arrayContaining(['nodes', 'kick', 'version', 'streams', 'prices']),
    );
    expect(await complete(r.out, ['--controller', 'h:1', 'controller', 'st'])).toEqual(['streams']);
    expect(await complete(r.out, ['controller', 'streams', '--ch'])).toEqual(['--check']);
    expect(await complete(r.out, ['node', 'status', '--node'])).toEqual(
      expect.arrayContaining(['--node-uuid', '--node']),
    );
  });

  test('zsh and fish scripts are generated from the same commands', async () => {
    const zsh = (await cli(['completion', 'zsh'])).out;
    expect(zsh.split('\n')[0]).toContain('source <(currency-cli completion zsh)');
    expect(zsh).toContain('bashcompinit');
    expect(zsh).toContain('complete -F _currency_cli currency-cli');
    const fish = (await cli(['completion', 'fish'])).out;
    expect(fish).toContain("-a 'controller'");
    expect(fish).toContain("-n '__fish_seen_subcommand_from streams' -l check");
    expect(fish).toContain('-l timeout -r');
  });
});

describe('an unreachable controller: the cause and the fix', () => {
  async function unreachable(address: string, extra: string[] = []) {
    const { code, out, err } = await runInProcess([
      '--controller',
      address,
      '--timeout',
      '0.5',
      ...extra,
      'controller',
      'nodes',
    ]);
    expect(code).toBe(3);
    expect(out).toBe('');
    return err;
  }

  /** A TCP server on loopback that accepts and never says a word. */
  async function silentServer() {
    const sockets = new Set<import('node:net').Socket>();
    const server = createServer((s) => sockets.add(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      address: `127.0.0.1:${(server.address() as { port: number }).port}`,
      close: () => {
        for (const s of sockets) s.destroy();
        return new Promise((r) => server.close(r));
      },
    };
  }

  test('connection refused says nothing listens, and where to fix the address', async () => {
    const s = await silentServer();
    const address = s.address;
    await s.close(); // now nothing listens there
    const err = await unreachable(address);
    expect(err).toContain(`could not reach the controller at ${address}: connection refused`);
    expect(err).toContain('is the controller running?');
    expect(err).toContain('--controller or CLI_CONTROLLER_ADDR');
  });

  test('a port that is not gRPC (or wants TLS) is told apart from a refusal', async () => {
    const s = await silentServer();
    try {
      const err = await unreachable(s.address);
      expect(err).toContain('a TCP connection opens but gRPC does not answer');
      expect(err).toContain('--tls-ca');
    } finally {
      await s.close();
    }
  });

  test('TLS to a plaintext controller names the TLS flags', async () => {
    const certs = makeCertDir();
    try {
      const ca = certs.newCa('ca');
      const err = await unreachable(fake.address, ['--tls-ca', ca.cert]);
      expect(err).toContain('over TLS');
      expect(err).toContain('TLS handshake or gRPC does not complete');
    } finally {
      certs.remove();
    }
  });
});
