/**
 * Strings from the controller (node names, pairs, versions, error messages) are data, not
 * terminal commands: the human output of every command shows their control characters
 * escaped (`\x1b`, `\t`, `\n`, ...), so a hostile controller or node cannot retitle the
 * terminal, clear the screen or forge table rows. `--json` carries them exactly.
 */
import type { StreamFromCli, StreamToCli } from '../../services/gen/protobuf/currency_nodes';
import { type MessageName, type MessageOf, pack, unpack } from '../../services/shared/any';
import { runInProcess } from '../support/cli-runner';
import { FakeController } from '../support/fake-controller';

jest.setTimeout(30_000);

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const B = '9a9a9a9a-0000-4000-8000-000000000002';
const NOW_S = Math.floor(Date.now() / 1000);
// Retitles the terminal (OSC 0), clears the screen, and a newline forging a row.
const EVIL_NAME = `edge\x1b]0;pwned\x07\x1b[2J\n${B}  forged  USD_HKD  -  1s`;
const EVIL_PAIR = 'USD_HKD\x1b[31m\u009b2J\x7f';
const EVIL_VERSION = '1.0.0\x1b]0;owned\x07\r\t';
const EVIL_ERROR = 'refused\x1b[2J\nforged line';
/** Any control character a human output may not carry: all but the newline ending lines. */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

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
      const c = unpack(f.command);
      const name = c.ok ? c.value.name : '';
      const price = {
        currencyPair: EVIL_PAIR,
        price: 7.8,
        priceUpdatedAt: { seconds: NOW_S, nanos: 0 },
        nodeUuid: A,
      };
      // A controller that lists nodes in one reply only (no ControllerListNodesV2Req).
      if (name === 'ControllerListNodesV2Req')
        send(frame(f, 'UnknownCommandV1Notify', { command: f.command }));
      else if (name === 'ControllerListNodesV1Req')
        send(
          frame(f, 'ControllerListNodesV1Reply', {
            nodeUuids: [A],
            nodes: [
              {
                nodeUuid: A,
                name: EVIL_NAME,
                knownCurrencyPairs: [EVIL_PAIR],
                streamingCurrencyPairs: [EVIL_PAIR],
                connectedAt: { seconds: NOW_S, nanos: 0 },
                peer: '',
              },
            ],
          }),
        );
      else if (name === 'ControllerAppVersionV1Req')
        send(frame(f, 'ControllerAppVersionV1Reply', { controllerAppVersion: EVIL_VERSION }));
      else if (name === 'ControllerStreamsV1Req')
        send(
          frame(f, 'ControllerStreamsV1Reply', {
            pairs: [
              { currencyPair: EVIL_PAIR, nodeUuids: [A], capableNodes: 1, desiredStreams: 2 },
            ],
          }),
        );
      else if (name === 'ControllerPricesV1Req')
        send(frame(f, 'ControllerPricesV1Reply', { prices: [price] }));
      else if (name === 'ControllerKickNodesV1Req')
        send(
          frame(f, 'ControllerKickNodesV1Reply', {
            kickedNodeUuids: [EVIL_NAME],
            unknownNodeUuids: [EVIL_PAIR],
          }),
        );
      else if (name === 'ControllerWatchPricesV2Req') {
        send(frame(f, 'ControllerWatchPricesV1Reply', { currencyPairs: [EVIL_PAIR] }));
        send(frame(f, 'ControllerPriceUpdatesV1Notify', { prices: [price] }));
      } else if (name === 'NodeStatusV1Req') {
        send(
          frame(f, 'CliResponseCountV1Notify', {
            expectedResponses: 2,
            nodeUuids: [A, B],
            unknownNodeUuids: [EVIL_NAME],
          }),
        );
        send(
          frame(
            f,
            'NodeStatusV1Reply',
            {
              appVersion: EVIL_VERSION,
              connectedControllerServer: EVIL_NAME,
              connectedAt: { seconds: NOW_S, nanos: 0 },
              streamStates: [{ currencyPair: EVIL_PAIR, streamState: 1, latestPrice: 7.8 }],
              config: { uuid: A, name: EVIL_NAME, verboseLog: false, controllerServers: [] },
            },
            A,
          ),
        );
        send(frame(f, 'CliErrorV1Notify', { code: 14, message: EVIL_ERROR }, B));
      } else if (name === 'NodeShutdownV1Req') {
        send(frame(f, 'CliErrorV1Notify', { code: 3, message: EVIL_ERROR }));
      }
    },
  });
});
afterAll(() => fake.stop());

function cli(argv: string[], stopAfterMs?: number) {
  return runInProcess(['--timeout', '3', ...argv], {
    env: { CLI_CONTROLLER_ADDR: fake.address },
    stopAfterMs,
  });
}

test.each<[string, string[], number | undefined]>([
  ['controller nodes', ['controller', 'nodes'], undefined],
  ['controller version', ['controller', 'version'], undefined],
  ['controller streams', ['controller', 'streams', '--check'], undefined],
  ['controller prices', ['controller', 'prices'], undefined],
  ['controller kick', ['controller', 'kick', A], undefined],
  ['node status', ['node', 'status', '--all'], undefined],
  ['node shutdown', ['node', 'shutdown', '--all'], undefined],
  ['watch', ['watch'], 1500],
])('%s shows control characters escaped, on stdout and stderr', async (_what, argv, stopMs) => {
  const r = await cli(argv, stopMs);
  expect(r.out + r.err).not.toMatch(CONTROL);
  expect(r.out + r.err).toMatch(/\\x1b|\\x9b/);
});

test('a name with a newline cannot forge a row of the nodes table', async () => {
  const r = await cli(['controller', 'nodes']);
  const lines = r.out.trimEnd().split('\n');
  expect(lines).toHaveLength(2); // header and the one node
  expect(lines[1]).toContain('edge\\x1b]0;pwned\\x07\\x1b[2J\\n');
});

test('--json carries the strings exactly', async () => {
  const nodes = JSON.parse((await cli(['--json', 'controller', 'nodes'])).out) as {
    name: string;
    knownCurrencyPairs: string[];
  }[];
  expect(nodes[0]).toMatchObject({ name: EVIL_NAME, knownCurrencyPairs: [EVIL_PAIR] });
  const version = JSON.parse((await cli(['--json', 'controller', 'version'])).out) as unknown;
  expect(version).toEqual({ controllerAppVersion: EVIL_VERSION });
});
