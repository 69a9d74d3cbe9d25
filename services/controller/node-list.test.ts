import { ControllerListNodesV1Reply } from '../gen/protobuf/currency_nodes';
import { timestampFromMs } from '../shared/time';
import { type NodeView, compareNodes, encodeListNodesReply, encodeNodeInfo } from './node-list';

const views: NodeView[] = [
  {
    uuid: '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f',
    name: 'node-a',
    peer: 'ipv4:127.0.0.1:50001',
    connectedAtMs: 1_700_000_000_123,
    knownPairs: ['BTC_USD', 'USD_HKD'],
    streamingPairs: ['USD_HKD'],
  },
  {
    uuid: '0b7d4a9e-2c1f-4e8a-9b3d-5f6a7c8d9e0f',
    name: 'ünïcode name',
    peer: 'ipv6:[::1]:50002',
    connectedAtMs: 1_700_000_001_999,
    knownPairs: ['EUR_USD'],
    streamingPairs: [],
  },
  {
    uuid: 'a1b2c3d4-0000-4000-8000-000000000000',
    name: '',
    peer: '',
    connectedAtMs: 0,
    knownPairs: [],
    streamingPairs: [],
  },
];

describe('the `controller nodes` reply built from per-node entries', () => {
  test('is byte for byte what the generated encoder writes for the whole reply', () => {
    const whole = ControllerListNodesV1Reply.encode({
      nodeUuids: views.map((v) => v.uuid),
      nodes: views.map((v) => ({
        nodeUuid: v.uuid,
        name: v.name,
        knownCurrencyPairs: v.knownPairs,
        streamingCurrencyPairs: v.streamingPairs,
        connectedAt: timestampFromMs(v.connectedAtMs),
        peer: v.peer,
      })),
    }).finish();
    const built = encodeListNodesReply(
      views.map((v) => ({ uuid: v.uuid, info: encodeNodeInfo(v) })),
    );
    expect(Buffer.from(built).equals(Buffer.from(whole))).toBe(true);
  });

  test('decodes to every node with its details, in the order given', () => {
    const reply = ControllerListNodesV1Reply.decode(
      encodeListNodesReply(views.map((v) => ({ uuid: v.uuid, info: encodeNodeInfo(v) }))),
    );
    expect(reply.nodeUuids).toEqual(views.map((v) => v.uuid));
    expect(
      reply.nodes.map((n) => [
        n.nodeUuid,
        n.name,
        n.knownCurrencyPairs,
        n.streamingCurrencyPairs,
        n.peer,
      ]),
    ).toEqual(views.map((v) => [v.uuid, v.name, v.knownPairs, v.streamingPairs, v.peer]));
    expect(reply.nodes[0]!.connectedAt).toEqual({ seconds: 1_700_000_000, nanos: 123_000_000 });
  });

  test('of no nodes is an empty message', () => {
    expect(encodeListNodesReply([])).toHaveLength(0);
  });
});

describe('the order of `controller nodes`', () => {
  test('is by name, then by UUID, by code point', () => {
    const nodes = [
      { name: 'b', uuid: '2' },
      { name: 'a', uuid: '9' },
      { name: 'B', uuid: '1' },
      { name: 'a', uuid: '3' },
      { name: 'node-10', uuid: '0' },
      { name: 'node-9', uuid: '0' },
      { name: '', uuid: '5' },
    ];
    expect([...nodes].sort(compareNodes).map((n) => `${n.name}/${n.uuid}`)).toEqual([
      '/5',
      'B/1',
      'a/3',
      'a/9',
      'b/2',
      'node-10/0',
      'node-9/0',
    ]);
    expect(compareNodes({ name: 'x', uuid: 'u' }, { name: 'x', uuid: 'u' })).toBe(0);
  });
});
