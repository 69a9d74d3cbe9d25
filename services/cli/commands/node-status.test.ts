/**
 * `node status` (node-status.ts): how each node's NodeStatusV1Reply is described. The
 * session is a fake whose nodeCommand returns the replies; routing and exit codes are
 * node-command.ts's (node-command.test.ts).
 */
import { CurrencyStreamStateV1_StreamState as StreamState } from '../../gen/protobuf/currency_nodes';
import type { MessageOf } from '../../shared/any';
import { EXIT } from '../../shared/program';
import { timestampFromMs } from '../../shared/time';
import type { NodeReply, NodeResult } from '../session';
import { nodeStatus } from './node-status';
import { fakeCliSession } from '../../../tests/support/fake-cli-session';

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';

async function run(replies: NodeReply[]) {
  const result: NodeResult = {
    expected: replies.map((r) => r.nodeUuid),
    unknown: [],
    replies,
    missing: [],
    failed: [],
  };
  const t = fakeCliSession({ nodeCommand: () => Promise.resolve(result) });
  const code = await nodeStatus(t.env, { nodeUuids: [A] });
  return { code, out: t.out() };
}

const status = (over: Partial<MessageOf<'NodeStatusV1Reply'>> = {}): NodeReply => ({
  nodeUuid: A,
  reply: {
    name: 'NodeStatusV1Reply',
    message: {
      appVersion: '1.2.3',
      connectedControllerServer: 'ctl:5160',
      connectedAt: timestampFromMs(Date.UTC(2026, 0, 2, 3, 4, 5)),
      streamStates: [
        { currencyPair: 'USD_HKD', streamState: StreamState.StreamStart, latestPrice: 7.8 },
        { currencyPair: 'EUR_USD', streamState: StreamState.StreamStop },
        { currencyPair: 'BTC_USD', streamState: StreamState.StreamStart },
      ],
      config: { uuid: A, name: 'alpha', verboseLog: false, controllerServers: [] },
      ...over,
    },
  },
});

describe('node status', () => {
  test('names the node, its version, controller, pairs and the streaming ones with their last price', async () => {
    const r = await run([status()]);
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toBe(
      [
        `node ${A} (alpha)`,
        '  version:     1.2.3',
        '  controller:  ctl:5160 since 2026-01-02T03:04:05.000Z',
        '  pairs:       USD_HKD,EUR_USD,BTC_USD',
        '  streaming:   USD_HKD=7.8, BTC_USD=?',
        '',
      ].join('\n'),
    );
  });

  test('a node streaming nothing shows "-"; an invalid price or time is shown as invalid, never thrown on', async () => {
    const r = await run([
      status({
        connectedAt: { seconds: 1e15, nanos: 0 },
        streamStates: [{ currencyPair: 'USD_HKD', streamState: StreamState.StreamStop }],
      }),
      {
        ...status({
          streamStates: [
            { currencyPair: 'USD_HKD', streamState: StreamState.StreamStart, latestPrice: NaN },
          ],
        }),
      },
    ]);
    expect(r.out).toContain('since invalid (seconds=1000000000000000, nanos=0)');
    expect(r.out).toContain('  streaming:   -\n');
    expect(r.out).toContain('USD_HKD=invalid (NaN)');
  });

  test('a reply without config falls back to the UUID it came from, and a name of ""', async () => {
    const r = await run([status({ config: undefined })]);
    expect(r.out.split('\n')[0]).toBe(`node ${A} ()`);
  });

  test('a reply of another type is named as such', async () => {
    const r = await run([{ nodeUuid: A, reply: { name: 'undecodable', typeUrl: 'x' } }]);
    expect(r.out).toBe(`${A}: undecodable\n`);
  });

  test('control characters from the node are shown escaped', async () => {
    const r = await run([status({ appVersion: '1\x1b[31m' })]);
    expect(r.out).toContain('  version:     1\\x1b[31m\n');
  });
});
