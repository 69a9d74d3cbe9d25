import type { Any } from '../gen/google/protobuf/any';
import { CurrencyStreamStateV1_StreamState as StreamState } from '../gen/protobuf/currency_nodes';
import {
  type Handlers,
  type MessageName,
  type MessageOf,
  TYPE_URL_PREFIX,
  dispatch,
  isKnownMessageName,
  messageNameOf,
  pack,
  toJson,
  typeUrlOf,
  unpack,
} from './any';

const UUID = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const ts = { seconds: 1_700_000_000, nanos: 123_000_000 };

/** One sample per message kind, with every field set to something other than its default. */
const samples: { [N in MessageName]: MessageOf<N> } = {
  UnknownCommandV1Notify: {
    command: { typeUrl: 'type.googleapis.com/x.Y', value: Buffer.from([1, 2, 3]) },
  },
  NodeKnownCurrenciesV1Notify: { knownCurrencyPairs: ['USD_HKD', 'BTC_USD'] },
  NodePriceUpdateV1Notify: { currencyPair: 'USD_HKD', price: 7.812345, priceUpdatedAt: ts },
  NodePriceUpdatesV1Notify: {
    updates: [
      { currencyPair: 'USD_HKD', price: 7.812345, priceUpdatedAt: ts },
      { currencyPair: 'BTC_USD', price: 60123.5, priceUpdatedAt: ts },
    ],
  },
  NodeStreamModifyStateV1Req: {
    streamStates: [
      {
        currencyPair: 'USD_HKD',
        streamState: StreamState.StreamStart,
        latestPrice: 7.8,
        latestPriceUpdatedAt: ts,
      },
      { currencyPair: 'BTC_USD', streamState: StreamState.StreamStop },
    ],
  },
  NodeStreamModifyStateV1Reply: {},
  NodeStatusV1Req: {},
  NodeStatusV1Reply: {
    appVersion: '1.2.3',
    connectedControllerServer: 'controller:5160',
    connectedAt: ts,
    streamStates: [
      { currencyPair: 'USD_HKD', streamState: StreamState.StreamStart, latestPrice: 7.8 },
    ],
    config: { uuid: UUID, name: 'n1', verboseLog: true, controllerServers: ['a:1', 'b:2'] },
  },
  NodeShutdownV1Req: {},
  NodeShutdownV1Reply: { shutdownAt: ts },
  ControllerListNodesV1Req: {},
  ControllerListNodesV1Reply: {
    nodeUuids: [UUID],
    nodes: [
      {
        nodeUuid: UUID,
        name: 'n1',
        knownCurrencyPairs: ['USD_HKD'],
        streamingCurrencyPairs: ['USD_HKD'],
        connectedAt: ts,
        peer: '10.0.0.1:4000',
      },
    ],
  },
  ControllerListNodesV2Req: { maxPageBytes: 65536, withoutPairs: false },
  ControllerListNodesPageV1: {
    nodes: [
      {
        nodeUuid: UUID,
        name: 'n1',
        knownCurrencyPairs: ['USD_HKD'],
        streamingCurrencyPairs: [],
        connectedAt: ts,
        peer: '10.0.0.1:4000',
      },
    ],
    page: 3,
    last: true,
    totalNodes: 1201,
  },
  ControllerKickNodesV1Req: { nodeUuids: [UUID] },
  ControllerKickNodesV1Reply: { kickedNodeUuids: [UUID], unknownNodeUuids: ['nope'] },
  ControllerAppVersionV1Req: {},
  ControllerAppVersionV1Reply: { controllerAppVersion: '0.1.0' },
  CliResponseCountV1Notify: {
    expectedResponses: 2,
    nodeUuids: [UUID, UUID],
    unknownNodeUuids: ['x'],
  },
  CliErrorV1Notify: { message: 'bad frame', code: 3 },
  ControllerStreamsV1Req: {},
  ControllerStreamsV1Reply: {
    pairs: [{ currencyPair: 'USD_HKD', nodeUuids: [UUID], capableNodes: 3, desiredStreams: 2 }],
  },
  ControllerPricesV1Req: {},
  ControllerPricesV1Reply: {
    prices: [{ currencyPair: 'USD_HKD', price: 7.8, priceUpdatedAt: ts, nodeUuid: UUID }],
  },
  ControllerWatchPricesV1Req: { currencyPairs: ['USD_HKD'] },
  ControllerWatchPricesV1Reply: { currencyPairs: ['USD_HKD', 'BTC_USD'] },
  ControllerWatchPricesV2Req: { currencyPairs: ['USD_HKD'] },
  ControllerPriceUpdatesV1Notify: {
    prices: [
      { currencyPair: 'USD_HKD', price: 7.8, priceUpdatedAt: ts, nodeUuid: UUID },
      { currencyPair: 'BTC_USD', price: 60000.5, priceUpdatedAt: ts, nodeUuid: UUID },
    ],
  },
};

const names = Object.keys(samples) as MessageName[];

describe('pack and unpack', () => {
  test.each(names)('%s survives a pack/unpack round trip', (name) => {
    const any = pack(name, samples[name]);
    expect(any.typeUrl).toBe(`type.googleapis.com/protobuf.${name}`);
    const r = unpack(any);
    expect(r).toEqual({ ok: true, value: { name, message: samples[name] } });
  });

  test('the type URL is type.googleapis.com/protobuf.<Name>', () => {
    expect(TYPE_URL_PREFIX).toBe('type.googleapis.com/protobuf.');
    expect(typeUrlOf('NodeStatusV1Req')).toBe('type.googleapis.com/protobuf.NodeStatusV1Req');
  });

  test('a round trip through the wire bytes of the Any itself keeps the message', () => {
    const any = pack('NodePriceUpdateV1Notify', samples.NodePriceUpdateV1Notify);
    const copy: Any = { typeUrl: any.typeUrl, value: Buffer.from(Uint8Array.from(any.value)) };
    const r = unpack(copy);
    expect(r.ok && r.value.name === 'NodePriceUpdateV1Notify' && r.value.message.price).toBe(
      7.812345,
    );
  });

  test('a packed message with all default fields has an empty value', () => {
    expect(pack('NodeStatusV1Req', {}).value.length).toBe(0);
  });

  test('unpack accepts another host before /protobuf.<Name>, as Any allows', () => {
    const any = { ...pack('NodeStatusV1Req', {}), typeUrl: 'example.com/protobuf.NodeStatusV1Req' };
    expect(unpack(any)).toEqual({ ok: true, value: { name: 'NodeStatusV1Req', message: {} } });
  });

  test('an absent Any is reported as missing', () => {
    expect(unpack(undefined)).toEqual({ ok: false, reason: 'missing', typeUrl: '' });
  });

  test('an Any with an empty type URL is reported as missing', () => {
    expect(unpack({ typeUrl: '', value: Buffer.from([8, 1]) })).toEqual({
      ok: false,
      reason: 'missing',
      typeUrl: '',
    });
  });

  test.each([
    'type.googleapis.com/protobuf.NoSuchCommandV1Req',
    'type.googleapis.com/other.NodeStatusV1Req',
    'type.googleapis.com/NodeStatusV1Req',
    'NodeStatusV1Req',
    'type.googleapis.com/protobuf.',
    'type.googleapis.com/protobuf.toString',
    'type.googleapis.com/protobuf.__proto__',
  ])('an unknown type URL %p is reported as unknown-type with the URL', (typeUrl) => {
    expect(unpack({ typeUrl, value: Buffer.alloc(0) })).toEqual({
      ok: false,
      reason: 'unknown-type',
      typeUrl,
    });
  });

  test.each<[string, MessageName, number[]]>([
    [
      'a length-delimited field longer than the bytes left',
      'NodeKnownCurrenciesV1Notify',
      [0x0a, 0x05, 0x41],
    ],
    ['a truncated varint', 'CliResponseCountV1Notify', [0x08, 0xff]],
    ['a truncated double', 'NodePriceUpdateV1Notify', [0x11, 0x00, 0x01]],
    ['a nested message cut short', 'NodeStatusV1Reply', [0x1a, 0x04, 0x08]],
  ])('a known type whose bytes hold %s is reported as malformed, not thrown', (_, name, bytes) => {
    const typeUrl = typeUrlOf(name);
    let r: ReturnType<typeof unpack> | undefined;
    expect(() => (r = unpack({ typeUrl, value: Buffer.from(bytes) }))).not.toThrow();
    expect(r).toMatchObject({ ok: false, reason: 'malformed', typeUrl });
    expect(r!.ok === false && r!.error).toEqual(expect.any(String));
  });

  test('unknown fields in a known type are skipped, not treated as malformed', () => {
    // field 99, varint 1: a newer peer's field.
    const r = unpack({
      typeUrl: typeUrlOf('NodeStatusV1Req'),
      value: Buffer.from([0x98, 0x06, 0x01]),
    });
    expect(r).toEqual({ ok: true, value: { name: 'NodeStatusV1Req', message: {} } });
  });
});

describe('names', () => {
  test('messageNameOf takes the part after the last slash without the protobuf. prefix', () => {
    expect(messageNameOf('type.googleapis.com/protobuf.NodeStatusV1Req')).toBe('NodeStatusV1Req');
    expect(messageNameOf('a/b/protobuf.X')).toBe('X');
    expect(messageNameOf('type.googleapis.com/other.X')).toBe('other.X');
    expect(messageNameOf('')).toBe('');
  });

  test('isKnownMessageName knows the packed names and not inherited object keys', () => {
    for (const n of names) expect(isKnownMessageName(n)).toBe(true);
    for (const n of ['toString', 'constructor', 'hasOwnProperty', 'Nope', ''])
      expect(isKnownMessageName(n)).toBe(false);
  });
});

describe('dispatch', () => {
  test('calls the handler for the message name with the message and context, and returns true', () => {
    const seen: Array<[string, unknown, number]> = [];
    const handlers: Handlers<number> = {
      NodeStatusV1Req: (m, ctx) => seen.push(['status', m, ctx]),
      NodeKnownCurrenciesV1Notify: (m, ctx) => seen.push(['known', m.knownCurrencyPairs, ctx]),
    };
    const r = unpack(pack('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: ['USD_HKD'] }));
    if (!r.ok) throw new Error('unpack failed');
    expect(dispatch(handlers, r.value, 42)).toBe(true);
    expect(seen).toEqual([['known', ['USD_HKD'], 42]]);
  });

  test('returns false and calls nothing when the receiver has no handler for the name', () => {
    const called = jest.fn();
    const handlers: Handlers<null> = { NodeStatusV1Req: called };
    const r = unpack(pack('NodeShutdownV1Req', {}));
    if (!r.ok) throw new Error('unpack failed');
    expect(dispatch(handlers, r.value, null)).toBe(false);
    expect(called).not.toHaveBeenCalled();
  });

  test('a handler that throws lets the error through to the caller', () => {
    const handlers: Handlers<null> = {
      NodeStatusV1Req: () => {
        throw new Error('boom');
      },
    };
    const r = unpack(pack('NodeStatusV1Req', {}));
    if (!r.ok) throw new Error('unpack failed');
    expect(() => dispatch(handlers, r.value, null)).toThrow('boom');
  });
});

describe('toJson', () => {
  test('renders a message in proto3 JSON form with camelCase names', () => {
    const r = unpack(pack('NodePriceUpdateV1Notify', samples.NodePriceUpdateV1Notify));
    if (!r.ok) throw new Error('unpack failed');
    expect(toJson(r.value)).toEqual({
      currencyPair: 'USD_HKD',
      price: 7.812345,
      priceUpdatedAt: '2023-11-14T22:13:20.123Z',
    });
  });
});
