/**
 * A real node in-process against a stand-in controller: it announces its pairs, obeys
 * full desired state, sends a first price at once (the one market's, never stamped ahead
 * of its clock), answers status and shutdown, and reconnects with backoff, silent while
 * disconnected.
 */
import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import { CurrencyStreamStateV1_StreamState as StreamState } from '../../services/gen/protobuf/currency_nodes';
import { type NodeConfig } from '../../services/node/config';
import { type RunningNode, startNode } from '../../services/node/node';
import { marketPrice } from '../../services/node/prices';
import { type MessageName, type MessageOf, pack } from '../../services/shared/any';
import { silentLogger } from '../../services/shared/logger';
import { msFromTimestamp, timestampFromMs } from '../../services/shared/time';
import { FakeController } from '../support/fake-controller';
import { LeakWatch } from '../support/leaks';
import { capturingLogger } from '../support/log-capture';
import { as } from '../support/raw-peers';
import { waitFor } from '../support/wait';
import { loopback, testNodeConfig } from '../support/node-config';

jest.setTimeout(30_000);

let leaks: LeakWatch;
let fake: FakeController;
let node: RunningNode | undefined;
let registry: Registry;
let shutdownRequested = 0;

function config(over: Partial<NodeConfig> = {}): NodeConfig {
  return testNodeConfig({
    controllerAddrs: loopback(fake.port),
    pairs: ['USD_HKD', 'BTC_USD', 'EUR_USD'],
    reconnectMaxMs: 200,
    headerWaitMs: 100, // the fake sends no headers, like a foreign controller: keep the wait short
    ...over,
  });
}

async function start(over: Partial<NodeConfig> = {}): Promise<RunningNode> {
  registry = new Registry();
  node = await startNode(config(over), {
    logger: silentLogger(),
    registry,
    defaultMetrics: false,
    serveHttp: false,
    onShutdownRequested: () => shutdownRequested++,
  });
  return node;
}

function framesOf<N extends MessageName>(
  name: N,
): { frame: (typeof fake.frames)[number]; msg: MessageOf<N> }[] {
  return fake.frames.flatMap((frame) => {
    const msg = as(name, frame.response);
    return msg ? [{ frame, msg }] : [];
  });
}

function desired(
  pairs: Record<string, { price?: number; atMs?: number } | undefined>,
  fromUuid?: string,
) {
  return {
    fromUuid,
    command: pack('NodeStreamModifyStateV1Req', {
      streamStates: Object.entries(pairs).map(([currencyPair, p]) => ({
        currencyPair,
        streamState: p ? StreamState.StreamStart : StreamState.StreamStop,
        latestPrice: p?.price,
        latestPriceUpdatedAt: p?.atMs !== undefined ? timestampFromMs(p.atMs) : undefined,
      })),
    }),
    traceContext: {},
  };
}

async function metric(name: string): Promise<number | undefined> {
  const m = await registry.getSingleMetric(name)?.get();
  return m?.values.reduce((a, v) => a + v.value, 0);
}

beforeAll(() => {
  leaks = new LeakWatch().start();
});

beforeEach(async () => {
  fake = await FakeController.start();
  shutdownRequested = 0;
});

afterEach(async () => {
  await node?.stop();
  node = undefined;
  await fake.stop();
});

afterAll(async () => {
  await leaks.expectNoLeaks();
});

test('the node announces its pairs as the first frame of its stream', async () => {
  const n = await start();
  const first = await waitFor('a frame', () => fake.frames[0]);
  expect(first.nodeUuid).toBe(n.uuid);
  expect(as('NodeKnownCurrenciesV1Notify', first.response)?.knownCurrencyPairs).toEqual([
    'USD_HKD',
    'BTC_USD',
    'EUR_USD',
  ]);
});

test('a newly started pair gets a first price at once: the market price, stamped with the node clock', async () => {
  await start();
  await waitFor('stream', () => fake.latestCall());
  const t0 = Date.now();
  fake.send(desired({ USD_HKD: { price: 1234.5, atMs: Date.now() - 10 } }));
  const [u] = await waitFor('first price', () => {
    const f = framesOf('NodePriceUpdateV1Notify');
    return f.length > 0 ? f : undefined;
  });
  expect(Date.now() - t0).toBeLessThan(1000); // the interval is 60 s: this is the immediate one
  expect(u!.msg.currencyPair).toBe('USD_HKD');
  // One market: every node reads the same upstream, so the handed-over price (from some
  // other walk) is not carried on; the price is the market's at the stamp.
  const at = msFromTimestamp(u!.msg.priceUpdatedAt)!;
  expect(u!.msg.price).toBe(marketPrice('USD_HKD', at));
  expect(at).toBeGreaterThanOrEqual(t0 - 5);
  expect(at).toBeLessThanOrEqual(Date.now());
});

test("a controller price dated ahead of the node's clock is never carried into the node's stamps", async () => {
  // Before: updatedAtMs = max(now, last + 1) turned a StreamStart an hour ahead into an
  // hour-ahead stamp on this and every later price of the pair.
  await start();
  await waitFor('stream', () => fake.latestCall());
  const t0 = Date.now();
  fake.send(
    desired({
      USD_HKD: { price: 7.8, atMs: t0 + 3_600_000 }, // poisoned, an hour ahead
      EUR_USD: { price: 1.08, atMs: t0 + 300 }, // a little ahead (clock skew)
      BTC_USD: { price: 60000, atMs: t0 - 1000 },
    }),
  );
  const received: { pair: string; atMs: number; receivedMs: number }[] = [];
  await waitFor('EUR_USD once our clock passed its stamp', () => {
    for (const { msg } of framesOf('NodePriceUpdateV1Notify').slice(received.length)) {
      received.push({
        pair: msg.currencyPair,
        atMs: msFromTimestamp(msg.priceUpdatedAt)!,
        receivedMs: Date.now(),
      });
    }
    return received.some((r) => r.pair === 'EUR_USD');
  });
  for (const r of received) expect(r.atMs).toBeLessThanOrEqual(r.receivedMs);
  expect(received.find((r) => r.pair === 'EUR_USD')!.atMs).toBeGreaterThan(t0 + 300);
  expect(received.some((r) => r.pair === 'BTC_USD')).toBe(true);
  // Nothing the controller would refuse as older than its latest.
  expect(received.some((r) => r.pair === 'USD_HKD')).toBe(false);
});

test('a partial request (as a foreign controller may send) is still a full state: unlisted pairs stop, and the node says so', async () => {
  const { logger, lines } = capturingLogger('info');
  registry = new Registry();
  const n = await startNode(config(), {
    logger,
    registry,
    defaultMetrics: false,
    serveHttp: false,
  });
  node = n;
  const partial = () => lines.filter((l) => String(l.msg).includes('does not list'));
  await waitFor('stream', () => fake.latestCall());
  fake.send(desired({ USD_HKD: {}, BTC_USD: {}, EUR_USD: {} }));
  await waitFor('three streaming', () => n.streamingPairs().length === 3);
  // Our controller lists every pair (started or stopped): nothing to say.
  fake.send(desired({ BTC_USD: {}, EUR_USD: {}, USD_HKD: undefined }));
  await waitFor('two streaming', () => n.streamingPairs().length === 2);
  fake.send(desired({ BTC_USD: {} }, 'ctl-req-1')); // lists one pair only
  await waitFor('only BTC_USD', () => n.streamingPairs().join() === 'BTC_USD');
  const ack = await waitFor('ack', () =>
    framesOf('NodeStreamModifyStateV1Reply').find((x) => x.frame.fromUuid === 'ctl-req-1'),
  );
  expect(ack.frame.nodeUuid).toBe(n.uuid);
  expect(partial()).toEqual([
    expect.objectContaining({ level: 'warn', unlisted: ['EUR_USD'], from_uuid: 'ctl-req-1' }),
  ]);
});

test('desired state is full: pairs it does not start are stopped, and pairs the node cannot reach are refused', async () => {
  const n = await start();
  await waitFor('stream', () => fake.latestCall());
  fake.send(desired({ USD_HKD: {}, BTC_USD: {} }));
  await waitFor('two streaming', () => n.streamingPairs().length === 2);
  fake.send(desired({ EUR_USD: {}, XAU_USD: {} })); // XAU_USD is not this node's
  await waitFor('only EUR_USD', () => n.streamingPairs().join() === 'EUR_USD');
  expect(await metric('currency_node_pairs_streaming')).toBe(1);
  // Every modify request is acknowledged.
  await waitFor('two acks', () => framesOf('NodeStreamModifyStateV1Reply').length === 2);
});

test('status is answered with the routing id echoed, the config and the stream states', async () => {
  const n = await start();
  await waitFor('stream', () => fake.latestCall());
  fake.send(desired({ USD_HKD: {} }));
  await waitFor('streaming', () => n.streamingPairs().length === 1);
  const rid = randomUUID();
  fake.send({ fromUuid: rid, command: pack('NodeStatusV1Req', {}), traceContext: {} });
  const reply = await waitFor('status reply', () =>
    framesOf('NodeStatusV1Reply').find((x) => x.frame.fromUuid === rid),
  );
  expect(reply.msg.config?.uuid).toBe(n.uuid);
  expect(reply.msg.config?.name).toBe('test-node');
  expect(reply.msg.connectedControllerServer).toBe(fake.address);
  const usd = reply.msg.streamStates.find((s) => s.currencyPair === 'USD_HKD');
  expect(usd?.streamState).toBe(StreamState.StreamStart);
  expect(usd?.latestPrice).toBeGreaterThan(0);
  expect(reply.msg.streamStates.find((s) => s.currencyPair === 'BTC_USD')?.streamState).toBe(
    StreamState.StreamStop,
  );
});

test('an unknown command is answered with UnknownCommandV1Notify carrying it', async () => {
  await start();
  await waitFor('stream', () => fake.latestCall());
  const alien = { typeUrl: 'type.googleapis.com/protobuf.NodeDanceV3Req', value: Buffer.alloc(0) };
  fake.send({ fromUuid: 'r1', command: alien, traceContext: {} });
  const u = await waitFor('unknown notify', () => framesOf('UnknownCommandV1Notify')[0]);
  expect(u.frame.fromUuid).toBe('r1');
  expect(u.msg.command?.typeUrl).toBe(alien.typeUrl);
});

test('shutdown is answered, the stream closed cleanly, and the program told to exit', async () => {
  const n = await start();
  await waitFor('stream', () => fake.latestCall());
  const call = fake.latestCall()!;
  const ended = new Promise<void>((r) => call.on('end', () => r()));
  fake.send({ fromUuid: 'bye', command: pack('NodeShutdownV1Req', {}), traceContext: {} });
  await waitFor('shutdown reply', () =>
    framesOf('NodeShutdownV1Reply').find((x) => x.frame.fromUuid === 'bye'),
  );
  await ended;
  await waitFor('exit requested', () => shutdownRequested === 1);
  expect(n.isConnected()).toBe(false);
});

test('when the controller drops, the node stops streaming at once and reconnects with backoff, announcing again', async () => {
  const n = await start();
  await waitFor('stream', () => fake.latestCall());
  fake.send(desired({ USD_HKD: {} }));
  await waitFor('streaming', () => n.streamingPairs().length === 1);
  const announcedBefore = framesOf('NodeKnownCurrenciesV1Notify').length;
  fake.dropAll();
  await waitFor('stopped streaming', () => n.streamingPairs().length === 0);
  expect(await metric('currency_node_connected')).toBe(0);
  await waitFor(
    'announced again',
    () => framesOf('NodeKnownCurrenciesV1Notify').length === announcedBefore + 1,
  );
  expect(fake.calls.length).toBe(2);
  // Registered again once the controller speaks; counted as a reconnect.
  fake.send(desired({ USD_HKD: {} }));
  await waitFor('connected again', () => n.isConnected());
  expect(await metric('currency_node_reconnects_total')).toBe(1);
});

test('the node retries a controller that is down, forever, until it comes back', async () => {
  const port = fake.port;
  await fake.stop();
  const n = await start({ controllerAddrs: [{ host: '127.0.0.1', port }] });
  await waitFor(
    'several attempts',
    async () => ((await metric('currency_node_reconnect_attempts_total')) ?? 0) >= 3,
    {
      timeoutMs: 5000,
    },
  );
  expect(n.isConnected()).toBe(false);
  fake = await FakeController.start(port);
  await waitFor('stream to the new controller', () => fake.latestCall(), { timeoutMs: 5000 });
  fake.send(desired({}));
  await waitFor('registered', () => n.isConnected());
});

test('to a controller that takes batches, prices falling due together go as one NodePriceUpdatesV1Notify', async () => {
  await fake.stop();
  fake = await FakeController.start(0, { acceptsPriceBatches: true });
  const n = await start();
  await waitFor('stream', () => fake.latestCall());
  fake.send(desired({ USD_HKD: {}, BTC_USD: {}, EUR_USD: {} }));
  // The three first prices fall due in the same event-loop turn: one frame.
  const [batch] = await waitFor('a batch', () => {
    const b = framesOf('NodePriceUpdatesV1Notify');
    return b.length > 0 ? b : undefined;
  });
  expect(batch!.frame.nodeUuid).toBe(n.uuid);
  expect(batch!.msg.updates.map((u) => u.currencyPair).sort()).toEqual([
    'BTC_USD',
    'EUR_USD',
    'USD_HKD',
  ]);
  expect(batch!.msg.updates.every((u) => u.price > 0 && u.priceUpdatedAt !== undefined)).toBe(true);
  expect(framesOf('NodePriceUpdateV1Notify')).toHaveLength(0);
  expect(await metric('currency_node_price_updates_sent_total')).toBe(3);
  // A single update due alone still goes as NodePriceUpdateV1Notify.
  fake.send(desired({ USD_HKD: {}, BTC_USD: {}, EUR_USD: {} }));
  fake.send(desired({}));
  fake.send(desired({ USD_HKD: {} }));
  const [single] = await waitFor('a single', () => {
    const s = framesOf('NodePriceUpdateV1Notify');
    return s.length > 0 ? s : undefined;
  });
  expect(single!.msg.currencyPair).toBe('USD_HKD');
});

test('to a controller that does not say it takes batches, every price goes as its own NodePriceUpdateV1Notify', async () => {
  await start();
  await waitFor('stream', () => fake.latestCall());
  fake.send(desired({ USD_HKD: {}, BTC_USD: {}, EUR_USD: {} }));
  const singles = await waitFor('three singles', () => {
    const s = framesOf('NodePriceUpdateV1Notify');
    return s.length === 3 ? s : undefined;
  });
  expect(singles.map((s) => s.msg.currencyPair).sort()).toEqual(['BTC_USD', 'EUR_USD', 'USD_HKD']);
  expect(framesOf('NodePriceUpdatesV1Notify')).toHaveLength(0);
});
