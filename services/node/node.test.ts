/**
 * startNode (node.ts) on a fake controller stream and the fake scheduler, no gRPC: the
 * client factory is replaced by one whose stream records what the node writes and lets
 * the test play the controller. The rules of the node itself: it announces its pairs,
 * takes each NodeStreamModifyStateV1Req as a full desired state, answers status and
 * shutdown (echoing from_uuid), answers what it does not know, and never streams while
 * disconnected. Reconnecting and keepalive are connection.ts's (connection.test.ts).
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import {
  CurrencyStreamStateV1_StreamState as StreamState,
  type StreamFromNode,
  type StreamToNode,
} from '../gen/protobuf/currency_nodes';
import { type MessageName, type MessageOf, pack, unpack } from '../shared/any';
import { silentLogger } from '../shared/logger';
import { timestampFromMs } from '../shared/time';
import { CONTROLLER_ACCEPTS_METADATA_KEY, NODE_NAME_METADATA_KEY } from '../shared/wire';
import { type FakeScheduler, fakeScheduler } from '../../tests/support/fake-scheduler';
import { loadNodeConfig } from './config';
import { type RunningNode, startNode } from './node';

/** The node's client stream: what it wrote, and the controller's side for the test. */
class MockNodeStream extends EventEmitter {
  readonly written: StreamFromNode[] = [];
  writableNeedDrain = false;
  ended = false;
  constructor(readonly metadata: grpc.Metadata) {
    super();
  }
  write(m: StreamFromNode): boolean {
    this.written.push(m);
    return true;
  }
  end(): void {
    this.ended = true;
    // A controller answers a half-close with its status.
    queueMicrotask(() =>
      this.emit('status', { code: grpc.status.OK, details: '', metadata: new grpc.Metadata() }),
    );
  }
  cancel(): void {}
  /** Response headers from a controller that takes price batches (or not). */
  headers(batches = false): void {
    const md = new grpc.Metadata();
    if (batches) md.set(CONTROLLER_ACCEPTS_METADATA_KEY, 'NodePriceUpdatesV1Notify');
    this.emit('metadata', md);
  }
  command<N extends MessageName>(name: N, m: MessageOf<N>, fromUuid?: string): void {
    const value: StreamToNode = { fromUuid, command: pack(name, m), traceContext: {} };
    this.emit('data', { ok: true, value });
  }
  /** Everything written, decoded: name, message and from_uuid. */
  sent() {
    return this.written.map((w) => {
      const u = unpack(w.response);
      if (!u.ok) throw new Error('the node wrote an undecodable frame');
      return { name: u.value.name, message: u.value.message, fromUuid: w.fromUuid, w };
    });
  }
  sentNamed<N extends MessageName>(name: N) {
    return this.sent()
      .filter((s) => s.name === name)
      .map((s) => ({ message: s.message as MessageOf<N>, fromUuid: s.fromUuid }));
  }
}

const mockStreams: MockNodeStream[] = [];
const mockDialled: string[] = [];

jest.mock('../shared/wire', () => ({
  ...jest.requireActual<object>('../shared/wire'),
  createNodeClient: (address: string) => {
    mockDialled.push(address);
    return {
      nodeCommandStream: (md: grpc.Metadata) => {
        const s = new MockNodeStream(md);
        mockStreams.push(s);
        return s;
      },
      close: () => {},
      // Every mock stream has its connection (connect hangs: connection.test.ts).
      getChannel: () => ({ getConnectivityState: () => grpc.connectivityState.READY }),
    };
  },
}));

const UUID = 'b1c2d3e4-0000-4000-8000-000000000001';
const running: RunningNode[] = [];

beforeEach(() => {
  mockStreams.length = 0;
  mockDialled.length = 0;
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop()));
});

async function start(env: Record<string, string> = {}) {
  const scheduler: FakeScheduler = fakeScheduler();
  const registry = new Registry();
  let shutdowns = 0;
  const node = await startNode(
    loadNodeConfig({
      NODE_CURRENCY_PAIRS: 'USD_HKD,EUR_USD',
      NODE_UUID: UUID,
      NODE_NAME: 'node-a',
      NODE_CONTROLLER_ADDR: 'ctl.test:5160',
      NODE_PRICE_INTERVAL_MS: '1000',
      ...env,
    }),
    {
      logger: silentLogger(),
      registry,
      scheduler,
      random: () => 0.5,
      market: { latest: () => 7.8 },
      defaultMetrics: false,
      credentials: grpc.credentials.createInsecure(),
      serveHttp: false,
      appVersion: '9.9.9-test',
      onShutdownRequested: () => shutdowns++,
    },
  );
  running.push(node);
  const stream = mockStreams.at(-1)!;
  const metric = async (name: string, labels: Record<string, string> = {}) =>
    (await registry.getSingleMetric(name)?.get())?.values.find((v) =>
      Object.entries(labels).every(([k, x]) => v.labels[k] === x),
    )?.value;
  return { node, scheduler, stream, metric, shutdowns: () => shutdowns };
}

/** Started, headers received, announced, and registered by the controller's first command. */
async function registered(env: Record<string, string> = {}) {
  const t = await start(env);
  t.stream.headers();
  t.stream.command('NodeStreamModifyStateV1Req', { streamStates: [] }, 'init');
  expect(t.node.isConnected()).toBe(true);
  return t;
}

const startPair = (pair: string, latest?: { price: number; atMs: number }) => ({
  currencyPair: pair,
  streamState: StreamState.StreamStart,
  latestPrice: latest?.price,
  latestPriceUpdatedAt: latest ? timestampFromMs(latest.atMs) : undefined,
});
const stopPair = (pair: string) => ({ currencyPair: pair, streamState: StreamState.StreamStop });

describe('connecting', () => {
  test('dials the controller with its name header, and announces its pairs once the headers came', async () => {
    const { stream } = await start();
    expect(mockDialled).toEqual(['ctl.test:5160']);
    expect(stream.metadata.get(NODE_NAME_METADATA_KEY)).toEqual(['node-a']);
    expect(stream.written).toEqual([]);
    stream.headers();
    expect(stream.sent().map((s) => [s.name, s.w.nodeUuid])).toEqual([
      ['NodeKnownCurrenciesV1Notify', UUID],
    ]);
    expect(stream.sentNamed('NodeKnownCurrenciesV1Notify')[0]!.message).toEqual({
      knownCurrencyPairs: ['USD_HKD', 'EUR_USD'],
    });
  });

  test('a name beyond printable ASCII goes as UTF-8 in the -bin header, with a percent-encoded copy', async () => {
    const { stream } = await start({ NODE_NAME: 'zürich ✓' });
    const bin = stream.metadata.get(`${NODE_NAME_METADATA_KEY}-bin`)[0];
    expect(Buffer.isBuffer(bin) && bin.toString('utf8')).toBe('zürich ✓');
    expect(stream.metadata.get(NODE_NAME_METADATA_KEY)).toEqual([encodeURIComponent('zürich ✓')]);
  });

  test('is connected only once the controller has answered, and reports that in its gauge', async () => {
    const t = await start();
    t.stream.headers();
    expect(t.node.isConnected()).toBe(false);
    expect(await t.metric('currency_node_connected')).toBe(0);
    t.stream.command('NodeStreamModifyStateV1Req', { streamStates: [] });
    expect(t.node.isConnected()).toBe(true);
    expect(await t.metric('currency_node_connected')).toBe(1);
  });
});

describe('the desired state', () => {
  test('streams the pairs it is told to start, answering with from_uuid echoed', async () => {
    const { node, stream, scheduler } = await registered();
    stream.command('NodeStreamModifyStateV1Req', { streamStates: [startPair('USD_HKD')] }, 'r1');
    expect(stream.sentNamed('NodeStreamModifyStateV1Reply').map((r) => r.fromUuid)).toEqual([
      'init',
      'r1',
    ]);
    expect(node.streamingPairs()).toEqual(['USD_HKD']);
    scheduler.advance(3_000);
    const prices = stream.sentNamed('NodePriceUpdateV1Notify').map((p) => p.message);
    expect(prices.length).toBeGreaterThan(0);
    expect(prices.every((p) => p.currencyPair === 'USD_HKD' && p.price === 7.8)).toBe(true);
  });

  test('is a full state: a streaming pair left out of the next request stops', async () => {
    const { node, stream } = await registered();
    stream.command('NodeStreamModifyStateV1Req', {
      streamStates: [startPair('USD_HKD'), startPair('EUR_USD')],
    });
    expect(node.streamingPairs()).toEqual(['EUR_USD', 'USD_HKD']);
    stream.command('NodeStreamModifyStateV1Req', { streamStates: [startPair('EUR_USD')] });
    expect(node.streamingPairs()).toEqual(['EUR_USD']);
    stream.command('NodeStreamModifyStateV1Req', {
      streamStates: [stopPair('EUR_USD'), stopPair('USD_HKD')],
    });
    expect(node.streamingPairs()).toEqual([]);
  });

  test('a pair the node cannot reach is not started, and the rest of the request still is', async () => {
    const { node, stream } = await registered();
    stream.command('NodeStreamModifyStateV1Req', {
      streamStates: [startPair('BTC_USD'), startPair('USD_HKD')],
    });
    expect(node.streamingPairs()).toEqual(['USD_HKD']);
  });

  test("no price is sent stamped at or before the controller's latest for the pair", async () => {
    const { stream, scheduler } = await registered();
    const ahead = scheduler.now() + 1_500;
    stream.command('NodeStreamModifyStateV1Req', {
      streamStates: [startPair('USD_HKD', { price: 7.7, atMs: ahead })],
    });
    scheduler.advance(5_000);
    const stamps = stream
      .sentNamed('NodePriceUpdateV1Notify')
      .map((p) => p.message.priceUpdatedAt!.seconds * 1000 + p.message.priceUpdatedAt!.nanos / 1e6);
    expect(stamps.length).toBeGreaterThan(0);
    expect(stamps.every((s) => s > ahead)).toBe(true);
  });

  test('to a controller that takes batches, updates due in the same turn go in one NodePriceUpdatesV1Notify', async () => {
    const t = await start();
    t.stream.headers(true);
    t.stream.command('NodeStreamModifyStateV1Req', {
      streamStates: [startPair('USD_HKD'), startPair('EUR_USD')],
    });
    t.scheduler.advance(3_000);
    const batches = t.stream.sentNamed('NodePriceUpdatesV1Notify');
    expect(batches.length).toBeGreaterThan(0);
    expect(batches[0]!.message.updates.map((u) => u.currencyPair).sort()).toEqual([
      'EUR_USD',
      'USD_HKD',
    ]);
  });

  test('to a controller that does not say it takes batches, every update goes alone', async () => {
    const { stream, scheduler } = await registered();
    stream.command('NodeStreamModifyStateV1Req', {
      streamStates: [startPair('USD_HKD'), startPair('EUR_USD')],
    });
    scheduler.advance(3_000);
    expect(stream.sentNamed('NodePriceUpdatesV1Notify')).toEqual([]);
    const pairs = new Set(
      stream.sentNamed('NodePriceUpdateV1Notify').map((p) => p.message.currencyPair),
    );
    expect([...pairs].sort()).toEqual(['EUR_USD', 'USD_HKD']);
  });

  test('never streams while disconnected: a lost stream stops every pair', async () => {
    const { node, stream, scheduler } = await registered();
    stream.command('NodeStreamModifyStateV1Req', { streamStates: [startPair('USD_HKD')] });
    stream.emit('status', {
      code: grpc.status.UNAVAILABLE,
      details: 'connection reset',
      metadata: new grpc.Metadata(),
    });
    expect(node.isConnected()).toBe(false);
    expect(node.streamingPairs()).toEqual([]);
    const before = stream.written.length;
    scheduler.advance(1_000_000);
    expect(stream.written.length).toBe(before);
  });
});

describe('commands', () => {
  test('status: version, controller, configuration, and every pair with its state and last price', async () => {
    const { stream, scheduler } = await registered();
    stream.command('NodeStreamModifyStateV1Req', { streamStates: [startPair('USD_HKD')] });
    scheduler.advance(3_000);
    stream.command('NodeStatusV1Req', {}, 'req-7');
    const [status] = stream.sentNamed('NodeStatusV1Reply');
    expect(status!.fromUuid).toBe('req-7');
    const m = status!.message;
    expect(m.appVersion).toBe('9.9.9-test');
    expect(m.connectedControllerServer).toBe('ctl.test:5160');
    expect(m.connectedAt).toBeDefined();
    expect(m.config).toEqual({
      uuid: UUID,
      name: 'node-a',
      verboseLog: false,
      controllerServers: ['ctl.test:5160'],
    });
    expect(m.streamStates.map((s) => [s.currencyPair, s.streamState, s.latestPrice])).toEqual([
      ['USD_HKD', StreamState.StreamStart, 7.8],
      ['EUR_USD', StreamState.StreamStop, undefined],
    ]);
  });

  test('status says verbose when the node logs at debug', async () => {
    const { stream } = await registered({ LOG_LEVEL: 'debug' });
    stream.command('NodeStatusV1Req', {});
    expect(stream.sentNamed('NodeStatusV1Reply')[0]!.message.config?.verboseLog).toBe(true);
  });

  test('a command it does not handle is answered with UnknownCommandV1Notify carrying it back', async () => {
    const { stream, metric } = await registered();
    stream.command('ControllerListNodesV1Req', {}, 'req-9');
    const [unknown] = stream.sentNamed('UnknownCommandV1Notify');
    expect(unknown!.fromUuid).toBe('req-9');
    expect(unknown!.message.command?.typeUrl).toBe(
      'type.googleapis.com/protobuf.ControllerListNodesV1Req',
    );
    expect(
      await metric('currency_node_commands_total', {
        command: 'ControllerListNodesV1Req',
        outcome: 'unknown',
      }),
    ).toBe(1);
  });

  test('a command whose payload does not decode is counted as malformed and not answered', async () => {
    const { stream, metric } = await registered();
    const before = stream.written.length;
    stream.emit('data', {
      ok: true,
      value: {
        fromUuid: 'x',
        command: {
          typeUrl: 'type.googleapis.com/protobuf.NodeStatusV1Req',
          value: Buffer.from([0xff, 0xff, 0xff]),
        },
        traceContext: {},
      },
    });
    expect(stream.written.length).toBe(before);
    expect(await metric('currency_node_malformed_frames_total')).toBe(1);
  });

  test('a frame that does not decode at all is counted and the stream carries on', async () => {
    const { stream, metric, node } = await registered();
    stream.emit('data', { ok: false, error: 'bad wire', bytes: 5 });
    expect(await metric('currency_node_malformed_frames_total')).toBe(1);
    expect(node.isConnected()).toBe(true);
  });

  test('shutdown: answered with the time, then the node stops streaming, closes its stream and says so', async () => {
    const { stream, scheduler, node, shutdowns } = await registered();
    stream.command('NodeStreamModifyStateV1Req', { streamStates: [startPair('USD_HKD')] });
    stream.command('NodeShutdownV1Req', {}, 'req-s');
    const [reply] = stream.sentNamed('NodeShutdownV1Reply');
    expect(reply!.fromUuid).toBe('req-s');
    expect(reply!.message.shutdownAt).toEqual(timestampFromMs(scheduler.now()));
    expect(node.streamingPairs()).toEqual([]);
    await node.stop();
    // stop() after a shutdown command is the same stop, done once.
    for (let i = 0; i < 10 && shutdowns() === 0; i++) await Promise.resolve();
    expect(shutdowns()).toBe(1);
    expect(stream.ended).toBe(true);
    expect(node.isConnected()).toBe(false);
  });
});
