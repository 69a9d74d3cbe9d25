/**
 * The CLI against a scripted controller (tests/support/fake-controller.ts): no value on
 * the wire can break a command (timestamps out of range, NaN or negative prices), and a
 * node the controller reports as gone fails the command at once, named, with exit 1.
 */
import { randomUUID } from 'node:crypto';
import type { Timestamp } from '../../services/gen/google/protobuf/timestamp';
import type { StreamFromCli, StreamToCli } from '../../services/gen/protobuf/currency_nodes';
import { type MessageName, type MessageOf, pack, unpack } from '../../services/shared/any';
import { type InProcessCliOptions, runInProcess } from '../support/cli-runner';
import { FakeController } from '../support/fake-controller';

jest.setTimeout(30_000);

const NODE_A = randomUUID();
const NODE_B = randomUUID();

/** Timestamps no honest peer sends; each must print as something, not throw. */
const BAD_TIMES: [string, Timestamp][] = [
  ['seconds = 1e13', { seconds: 1e13, nanos: 0 }],
  ['seconds = -1e13', { seconds: -1e13, nanos: 0 }],
  ['negative nanos', { seconds: 1_700_000_000, nanos: -1 }],
  ['nanos of 2e9', { seconds: 1_700_000_000, nanos: 2_000_000_000 }],
];
const BAD_PRICES = [NaN, -1, 0, Infinity, -Infinity];
const GOOD_TIME: Timestamp = { seconds: 1_700_000_000, nanos: 500_000_000 };

/** What the fake answers; each test sets it. */
let script: (frame: StreamFromCli, send: (m: StreamToCli) => void) => void = () => {};
/** `controller nodes` as the fake answers it when the script does not (names for UUIDs). */
const nodeList: { nodeUuid: string; name: string }[] = [];
let fake: FakeController;

beforeAll(async () => {
  fake = await FakeController.start(0, {
    cli: (f, send) => {
      let answered = false;
      script(f, (m) => {
        answered = true;
        send(m);
      });
      // A controller that lists nodes in one reply only (no ControllerListNodesV2Req).
      if (!answered && commandOf(f) === 'ControllerListNodesV2Req')
        send(frame(f, 'UnknownCommandV1Notify', { command: f.command }));
      if (!answered && commandOf(f) === 'ControllerListNodesV1Req')
        send(
          frame(f, 'ControllerListNodesV1Reply', {
            nodeUuids: nodeList.map((n) => n.nodeUuid),
            nodes: nodeList.map((n) => ({
              ...n,
              knownCurrencyPairs: [],
              streamingCurrencyPairs: [],
              connectedAt: GOOD_TIME,
              peer: '',
            })),
          }),
        );
    },
  });
});
afterAll(() => fake.stop());

function frame<N extends MessageName>(
  to: StreamFromCli,
  name: N,
  message: MessageOf<N>,
  nodeUuid?: string,
): StreamToCli {
  return { streamId: to.streamId, nodeUuid, traceContext: {}, response: pack(name, message) };
}

function commandOf(f: StreamFromCli): string {
  const c = unpack(f.command);
  return c.ok ? c.value.name : '?';
}

function cli(argv: string[], opts: InProcessCliOptions = {}) {
  return runInProcess(['--timeout', '10', ...argv], {
    ...opts,
    env: { CLI_CONTROLLER_ADDR: fake.address, ...opts.env },
  });
}

describe('no value on the wire breaks a command', () => {
  const prices = () => [
    ...BAD_TIMES.map(([, t], i) => ({
      currencyPair: `T${i}_USD`,
      price: 1.5,
      priceUpdatedAt: t,
      nodeUuid: NODE_A,
    })),
    ...BAD_PRICES.map((p, i) => ({
      currencyPair: `P${i}_USD`,
      price: p,
      priceUpdatedAt: GOOD_TIME,
      nodeUuid: NODE_A,
    })),
  ];

  test.each([[false], [true]])('controller prices (--json: %p)', async (asJson) => {
    script = (f, send) => {
      if (commandOf(f) === 'ControllerPricesV1Req')
        send(frame(f, 'ControllerPricesV1Reply', { prices: prices() }));
    };
    const r = await cli([...(asJson ? ['--json'] : []), 'controller', 'prices']);
    expect(r.err).not.toMatch(/Invalid time value|RangeError/);
    expect(r.code).toBe(0);
    if (asJson) {
      const rows = JSON.parse(r.out) as {
        currencyPair: string;
        price: unknown;
        priceUpdatedAt: unknown;
      }[];
      expect(rows).toHaveLength(BAD_TIMES.length + BAD_PRICES.length);
      for (let i = 0; i < BAD_TIMES.length; i++)
        expect(rows.find((x) => x.currencyPair === `T${i}_USD`)?.priceUpdatedAt).toBeNull();
      expect(rows.find((x) => x.currencyPair === 'P0_USD')?.price).toBeNull(); // NaN
      expect(rows.find((x) => x.currencyPair === 'P1_USD')?.price).toBe(-1);
      expect(rows.find((x) => x.currencyPair === 'P0_USD')?.priceUpdatedAt).toBe(
        '2023-11-14T22:13:20.500Z',
      );
    } else {
      expect(r.out).toContain('invalid (seconds=10000000000000, nanos=0)');
      expect(r.out).toContain('invalid (seconds=1700000000, nanos=-1)');
      expect(r.out).toContain('invalid (NaN)');
      expect(r.out).toContain('invalid (-1)');
      expect(r.out).toContain('invalid (Infinity)');
      expect(r.out.trimEnd().split('\n')).toHaveLength(1 + BAD_TIMES.length + BAD_PRICES.length);
    }
  });

  test.each([
    ['V2 batched', false, false],
    ['V1', true, false],
    ['V2 batched, --json', false, true],
    ['V1, --json', true, true],
  ])('watch (%s)', async (_what, v1Only, asJson) => {
    const all = prices();
    script = (f, send) => {
      const name = commandOf(f);
      if (name === 'ControllerWatchPricesV2Req') {
        if (v1Only) {
          send(frame(f, 'UnknownCommandV1Notify', { command: f.command }));
          return;
        }
        send(frame(f, 'ControllerWatchPricesV1Reply', { currencyPairs: [] }));
        send(frame(f, 'ControllerPriceUpdatesV1Notify', { prices: all }));
      } else if (name === 'ControllerWatchPricesV1Req') {
        send(frame(f, 'ControllerWatchPricesV1Reply', { currencyPairs: [] }));
        for (const p of all)
          send(
            frame(
              f,
              'NodePriceUpdateV1Notify',
              { currencyPair: p.currencyPair, price: p.price, priceUpdatedAt: p.priceUpdatedAt },
              p.nodeUuid,
            ),
          );
      }
    };
    const lines = (s: string) => s.split('\n').filter((l) => l !== '');
    const r = await cli([...(asJson ? ['--json'] : []), 'watch'], {
      stopWhen: (out) => lines(out).length >= all.length,
    });
    expect(r.err).not.toMatch(/Invalid time value|RangeError/);
    expect(r.code).toBe(0);
    expect(lines(r.out)).toHaveLength(all.length);
    if (asJson) {
      const rows = lines(r.out).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(rows[0]!.priceUpdatedAt).toBeNull();
      expect(rows[BAD_TIMES.length]!.price).toBeNull();
    } else {
      expect(r.out).toContain('invalid (seconds=10000000000000, nanos=0)');
      expect(r.out).toContain('invalid (NaN)');
    }
  });

  test.each([[false], [true]])('node status and node shutdown (--json: %p)', async (asJson) => {
    const [, bad] = BAD_TIMES[0]!;
    script = (f, send) => {
      const name = commandOf(f);
      send(
        frame(f, 'CliResponseCountV1Notify', {
          expectedResponses: 1,
          nodeUuids: [NODE_A],
          unknownNodeUuids: [],
        }),
      );
      if (name === 'NodeStatusV1Req')
        send(
          frame(
            f,
            'NodeStatusV1Reply',
            {
              appVersion: '1.0.0',
              connectedControllerServer: 'c:5160',
              connectedAt: bad,
              streamStates: [
                {
                  currencyPair: 'USD_HKD',
                  streamState: 1,
                  latestPrice: NaN,
                  latestPriceUpdatedAt: bad,
                },
              ],
              config: { uuid: NODE_A, name: 'a', verboseLog: false, controllerServers: [] },
            },
            NODE_A,
          ),
        );
      else if (name === 'NodeShutdownV1Req')
        send(frame(f, 'NodeShutdownV1Reply', { shutdownAt: BAD_TIMES[2]![1] }, NODE_A));
    };
    const j = asJson ? ['--json'] : [];
    const status = await cli([...j, 'node', 'status', '--node-uuid', NODE_A]);
    const shutdown = await cli([...j, 'node', 'shutdown', '--node-uuid', NODE_A]);
    for (const r of [status, shutdown]) {
      expect(r.err).not.toMatch(/Invalid time value|RangeError/);
      expect(r.code).toBe(0);
    }
    if (asJson) {
      const s = JSON.parse(status.out) as { replies: { reply: Record<string, unknown> }[] };
      expect(s.replies[0]!.reply.connectedAt).toBeNull();
      expect(s.replies[0]!.reply.appVersion).toBe('1.0.0');
      const states = s.replies[0]!.reply.streamStates as Record<string, unknown>[];
      expect(states[0]!.latestPriceUpdatedAt).toBeNull();
      const d = JSON.parse(shutdown.out) as { replies: { reply: Record<string, unknown> }[] };
      expect(d.replies[0]!.reply.shutdownAt).toBeNull();
    } else {
      expect(status.out).toContain('since invalid (seconds=10000000000000, nanos=0)');
      expect(status.out).toContain('USD_HKD=invalid (NaN)');
      expect(shutdown.out).toContain('invalid (seconds=1700000000, nanos=-1)');
    }
  });

  test.each([[false], [true]])('controller nodes (--json: %p)', async (asJson) => {
    script = (f, send) => {
      if (commandOf(f) === 'ControllerListNodesV1Req')
        send(
          frame(f, 'ControllerListNodesV1Reply', {
            nodeUuids: [NODE_A],
            nodes: [
              {
                nodeUuid: NODE_A,
                name: 'a',
                knownCurrencyPairs: ['USD_HKD'],
                streamingCurrencyPairs: [],
                connectedAt: BAD_TIMES[1]![1],
                peer: '',
              },
            ],
          }),
        );
    };
    const r = await cli([...(asJson ? ['--json'] : []), 'controller', 'nodes']);
    expect(r.err).not.toMatch(/Invalid time value|RangeError/);
    expect(r.code).toBe(0);
    if (asJson)
      expect((JSON.parse(r.out) as { connectedAt: unknown }[])[0]!.connectedAt).toBeNull();
    else expect(r.out).toMatch(/USD_HKD +- +\?\n/); // AGE of a malformed connectedAt
  });
});

test('a reply that cannot even be decoded (seconds beyond 2^53) is named, exit 1', async () => {
  script = (f, send) => {
    send(
      frame(f, 'ControllerPricesV1Reply', {
        prices: [
          {
            currencyPair: 'USD_HKD',
            price: 1,
            priceUpdatedAt: { seconds: 2 ** 62, nanos: 0 },
            nodeUuid: NODE_A,
          },
        ],
      }),
    );
  };
  const r = await cli(['controller', 'prices']);
  expect(r.code).toBe(1);
  expect(r.err).toContain(
    'undecodable reply of type type.googleapis.com/protobuf.ControllerPricesV1Reply',
  );
});

describe('a node that goes before answering', () => {
  /** A answers; the controller reports B gone (on B's behalf, or without a node_uuid). */
  function scriptGone(withNodeUuid: boolean) {
    script = (f, send) => {
      send(
        frame(f, 'CliResponseCountV1Notify', {
          expectedResponses: 2,
          nodeUuids: [NODE_A, NODE_B],
          unknownNodeUuids: [],
        }),
      );
      send(
        frame(
          f,
          'NodeStatusV1Reply',
          {
            appVersion: '1.0.0',
            connectedControllerServer: 'c:5160',
            connectedAt: GOOD_TIME,
            streamStates: [],
            config: { uuid: NODE_A, name: 'a', verboseLog: false, controllerServers: [] },
          },
          NODE_A,
        ),
      );
      send(
        frame(
          f,
          'CliErrorV1Notify',
          { code: 14, message: `node ${NODE_B} (b) disconnected before answering (kicked)` },
          withNodeUuid ? NODE_B : undefined,
        ),
      );
    };
  }

  test('is named at once with its message, and the command exits 1 without waiting', async () => {
    scriptGone(true);
    const started = Date.now();
    const r = await cli(['node', 'status', '--all']);
    expect(r.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(5_000); // the timeout is 10 s
    expect(r.out).toContain(`node ${NODE_A} (a)`);
    expect(r.err).toContain(
      `node ${NODE_B} failed: node ${NODE_B} (b) disconnected before answering (kicked)`,
    );
    expect(r.err).not.toContain('no reply from');
  });

  test('--json lists it under failedNodes', async () => {
    scriptGone(true);
    const r = await cli(['--json', 'node', 'status', '--all']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.out) as Record<string, unknown>;
    expect(doc.failedNodes).toEqual([
      { nodeUuid: NODE_B, message: `node ${NODE_B} (b) disconnected before answering (kicked)` },
    ]);
    expect(doc.missingNodeUuids).toEqual([]);
    expect((doc.replies as unknown[]).length).toBe(1);
  });

  test('a CliErrorV1Notify without node_uuid still fails the whole command', async () => {
    scriptGone(false);
    const started = Date.now();
    const r = await cli(['node', 'status', '--all']);
    expect(r.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(r.err).toContain('the controller rejected the command');
  });
});
