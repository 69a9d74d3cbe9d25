/**
 * WatchFanout (fanout.ts) on fake CLI streams and the fake scheduler: who gets which
 * update, how V1 and V2 (batched) watches are framed, and what happens to a watcher that
 * does not keep up.
 */
import * as grpc from '@grpc/grpc-js';
import type { StreamFromCli, StreamToCli } from '../../../gen/protobuf/currency_nodes';
import { type MessageOf, unpack } from '../../../shared/any';
import { timestampFromMs } from '../../../shared/time';
import { FakeCall } from '../../../../tests/support/fake-call';
import { type FakeScheduler, fakeScheduler } from '../../../../tests/support/fake-scheduler';
import { type CliSession, newCliSession } from './cli-session';
import { WatchFanout } from './fanout';
import type { CloseReason } from '../links/close-reasons';
import { StreamLink } from '../links/stream-link';

const NODE = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const OTHER_NODE = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';

type CliCall = FakeCall<StreamFromCli, StreamToCli>;

function setup(opts: { maxQueuedMessages?: number; slowWatcherMs?: number } = {}) {
  const scheduler: FakeScheduler = fakeScheduler();
  const maxQueuedMessages = opts.maxQueuedMessages ?? 100;
  let dropped = 0;
  const fanout = new WatchFanout({
    scheduler,
    maxQueuedMessages,
    slowWatcherMs: opts.slowWatcherMs ?? 5000,
    onDropped: () => dropped++,
  });
  /** A CLI stream, opened now, on a fake call whose send queue the test sets. */
  const cli = () => {
    const call: CliCall = new FakeCall();
    const closed: CloseReason[] = [];
    const link = new StreamLink<StreamFromCli, StreamToCli>(
      call.asCall(),
      { scheduler, maxQueuedMessages },
      { onFrame: () => {}, onClosed: (_l, reason) => closed.push(reason) },
    );
    link.open();
    const session: CliSession = newCliSession(link);
    return { call, session, closed };
  };
  return { scheduler, fanout, cli, dropped: () => dropped };
}

/** What a CLI call was sent, decoded: one entry per frame. */
function frames(call: CliCall) {
  return call.written.map((w) => {
    const u = unpack(w.response);
    if (!u.ok) throw new Error(`undecodable frame ${w.response?.typeUrl}`);
    return { streamId: w.streamId, nodeUuid: w.nodeUuid, name: u.value.name, u: u.value };
  });
}

/** The prices of every ControllerPriceUpdatesV1Notify on `streamId`, one array per frame. */
function batches(call: CliCall, streamId: string) {
  return frames(call)
    .filter((f) => f.streamId === streamId && f.u.name === 'ControllerPriceUpdatesV1Notify')
    .map((f) =>
      (f.u.message as MessageOf<'ControllerPriceUpdatesV1Notify'>).prices.map((p) => ({
        pair: p.currencyPair,
        price: p.price,
        node: p.nodeUuid,
      })),
    );
}

describe('who gets an update', () => {
  test('with no watcher at all, an update costs nothing and schedules nothing', () => {
    const { fanout, scheduler } = setup();
    fanout.deliver(NODE, 'BTC_USD', 1, scheduler.now());
    expect(scheduler.pending()).toBe(0);
  });

  test('a watch on some pairs gets only those pairs; a watch on all pairs (null) gets every pair', () => {
    const { fanout, cli, scheduler } = setup();
    const some = cli();
    const all = cli();
    fanout.watch(some.session, 'w', new Set(['BTC_USD']), false);
    fanout.watch(all.session, 'w', null, false);
    fanout.deliver(NODE, 'BTC_USD', 1, scheduler.now());
    fanout.deliver(NODE, 'EUR_USD', 2, scheduler.now());
    expect(
      frames(some.call).map((f) => (f.u.message as { currencyPair: string }).currencyPair),
    ).toEqual(['BTC_USD']);
    expect(
      frames(all.call).map((f) => (f.u.message as { currencyPair: string }).currencyPair),
    ).toEqual(['BTC_USD', 'EUR_USD']);
  });

  test('two watches on one CLI stream each get the update on their own stream id', () => {
    const { fanout, cli, scheduler } = setup();
    const c = cli();
    fanout.watch(c.session, 'a', null, false);
    fanout.watch(c.session, 'b', new Set(['BTC_USD']), false);
    fanout.deliver(NODE, 'BTC_USD', 1, scheduler.now());
    expect(frames(c.call).map((f) => f.streamId)).toEqual(['a', 'b']);
  });

  test('a forgotten CLI stream gets nothing more, and its queued batch is never sent', () => {
    const { fanout, cli, scheduler } = setup();
    const c = cli();
    fanout.watch(c.session, 'v1', null, false);
    fanout.watch(c.session, 'v2', null, true);
    fanout.deliver(NODE, 'BTC_USD', 1, scheduler.now());
    expect(c.call.written).toHaveLength(1); // the V1 frame; the V2 batch waits for the turn's end
    fanout.forget(c.session);
    expect(c.session.watches.size).toBe(0);
    expect(c.session.batches.size).toBe(0);
    fanout.deliver(NODE, 'BTC_USD', 2, scheduler.now());
    scheduler.flush();
    expect(c.call.written).toHaveLength(1);
  });
});

describe('V1 watches: one frame per update', () => {
  test('each update is a NodePriceUpdateV1Notify naming its node, with the price and its time', () => {
    const { fanout, cli, scheduler } = setup();
    const c = cli();
    fanout.watch(c.session, 'w', null, false);
    const at = scheduler.now() - 1500;
    fanout.deliver(NODE, 'BTC_USD', 65000.5, at);
    fanout.deliver(OTHER_NODE, 'BTC_USD', 65001, at + 1);
    const f = frames(c.call);
    expect(f.map((x) => [x.streamId, x.nodeUuid, x.name])).toEqual([
      ['w', NODE, 'NodePriceUpdateV1Notify'],
      ['w', OTHER_NODE, 'NodePriceUpdateV1Notify'],
    ]);
    expect(f[0]!.u.message).toEqual({
      currencyPair: 'BTC_USD',
      price: 65000.5,
      priceUpdatedAt: timestampFromMs(at),
    });
    // Sent at once: nothing waits for the end of the turn.
    expect(scheduler.pending()).toBe(0);
  });
});

describe('V2 (batched) watches: one frame per event-loop turn', () => {
  test("a turn's updates go out together in one ControllerPriceUpdatesV1Notify at its end, in order", () => {
    const { fanout, cli, scheduler } = setup();
    const c = cli();
    fanout.watch(c.session, 'w', null, true);
    fanout.deliver(NODE, 'BTC_USD', 1, scheduler.now());
    fanout.deliver(OTHER_NODE, 'EUR_USD', 2, scheduler.now());
    fanout.deliver(NODE, 'BTC_USD', 3, scheduler.now());
    expect(c.call.written).toEqual([]);
    expect(scheduler.pending()).toBe(1); // one immediate for the whole turn
    scheduler.flush();
    expect(batches(c.call, 'w')).toEqual([
      [
        { pair: 'BTC_USD', price: 1, node: NODE },
        { pair: 'EUR_USD', price: 2, node: OTHER_NODE },
        { pair: 'BTC_USD', price: 3, node: NODE },
      ],
    ]);
    // The batch frame itself names no node: each entry does.
    expect(c.call.written[0]!.nodeUuid).toBeUndefined();
  });

  test('the next turn starts a new batch', () => {
    const { fanout, cli, scheduler } = setup();
    const c = cli();
    fanout.watch(c.session, 'w', null, true);
    fanout.deliver(NODE, 'BTC_USD', 1, scheduler.now());
    scheduler.flush();
    fanout.deliver(NODE, 'BTC_USD', 2, scheduler.now());
    scheduler.flush();
    expect(batches(c.call, 'w').map((b) => b.map((p) => p.price))).toEqual([[1], [2]]);
  });

  test('a batch that reaches 1000 updates goes out at once; the 1001st starts the next', () => {
    const { fanout, cli, scheduler } = setup();
    const c = cli();
    fanout.watch(c.session, 'w', null, true);
    for (let i = 1; i <= 1000; i++) fanout.deliver(NODE, 'BTC_USD', i, scheduler.now());
    expect(batches(c.call, 'w').map((b) => b.length)).toEqual([1000]);
    fanout.deliver(NODE, 'BTC_USD', 1001, scheduler.now());
    scheduler.flush();
    expect(batches(c.call, 'w').map((b) => b.length)).toEqual([1000, 1]);
    expect(batches(c.call, 'w')[1]![0]!.price).toBe(1001);
  });

  test('watches of one stream are batched apart, each on its stream id', () => {
    const { fanout, cli, scheduler } = setup();
    const c = cli();
    fanout.watch(c.session, 'btc', new Set(['BTC_USD']), true);
    fanout.watch(c.session, 'eur', new Set(['EUR_USD']), true);
    fanout.deliver(NODE, 'BTC_USD', 1, scheduler.now());
    fanout.deliver(NODE, 'EUR_USD', 2, scheduler.now());
    scheduler.flush();
    expect(batches(c.call, 'btc')).toEqual([[{ pair: 'BTC_USD', price: 1, node: NODE }]]);
    expect(batches(c.call, 'eur')).toEqual([[{ pair: 'EUR_USD', price: 2, node: NODE }]]);
  });

  test('flush() (a shutdown) sends every queued batch now and cancels the end-of-turn send', () => {
    const { fanout, cli, scheduler } = setup();
    const a = cli();
    const b = cli();
    fanout.watch(a.session, 'w', null, true);
    fanout.watch(b.session, 'w', null, true);
    fanout.deliver(NODE, 'BTC_USD', 1, scheduler.now());
    fanout.flush();
    expect(batches(a.call, 'w')).toHaveLength(1);
    expect(batches(b.call, 'w')).toHaveLength(1);
    expect(scheduler.pending()).toBe(0);
    expect(a.session.batches.size).toBe(0);
    // Nothing is sent twice.
    scheduler.flush();
    expect(a.call.written).toHaveLength(1);
  });
});

describe('a watcher that does not keep up', () => {
  test('a V1 watcher has its updates dropped, not queued, once half the send-queue limit is waiting', () => {
    // maxQueuedMessages 100: the watch limit is 50, half of what would disconnect the stream.
    const { fanout, cli, scheduler, dropped } = setup({ maxQueuedMessages: 100 });
    const c = cli();
    fanout.watch(c.session, 'w', null, false);
    c.call.writableLength = 49;
    fanout.deliver(NODE, 'BTC_USD', 1, scheduler.now());
    expect(c.call.written).toHaveLength(1);
    c.call.writableLength = 50;
    fanout.deliver(NODE, 'BTC_USD', 2, scheduler.now());
    expect(c.call.written).toHaveLength(1);
    expect(dropped()).toBe(1);
    // Dropped, not held back: once the backlog drains, the next update is the one sent.
    c.call.writableLength = 0;
    fanout.deliver(NODE, 'BTC_USD', 3, scheduler.now());
    expect(frames(c.call).map((f) => (f.u.message as { price: number }).price)).toEqual([1, 3]);
  });

  test('the V1 watch limit is never below 16, however small the send-queue limit', () => {
    const { fanout, cli, scheduler, dropped } = setup({ maxQueuedMessages: 10 });
    const c = cli();
    fanout.watch(c.session, 'w', null, false);
    c.call.writableLength = 15;
    fanout.deliver(NODE, 'BTC_USD', 1, scheduler.now());
    c.call.writableLength = 16;
    fanout.deliver(NODE, 'BTC_USD', 2, scheduler.now());
    expect(dropped()).toBe(1);
    // 15 queued is past the stream's own limit of 10: the link itself disconnects on send.
    expect(c.closed).toEqual(['slow_consumer']);
  });

  test('a watch stream is not disconnected by its own burst: at the watch limit, updates are dropped and the stream stays', () => {
    const { fanout, cli, scheduler, dropped } = setup({ maxQueuedMessages: 40 });
    const c = cli();
    fanout.watch(c.session, 'w', null, false);
    c.call.writableLength = 20;
    for (let i = 0; i < 100; i++) fanout.deliver(NODE, 'BTC_USD', i + 1, scheduler.now());
    expect(dropped()).toBe(100);
    expect(c.closed).toEqual([]);
    expect(c.call.status).toBeUndefined();
  });

  test('a batched watcher is dropped once 16 frames are waiting, whatever the send-queue limit', () => {
    const { fanout, cli, scheduler, dropped } = setup({ maxQueuedMessages: 10_000 });
    const c = cli();
    fanout.watch(c.session, 'w', null, true);
    c.call.writableLength = 15;
    fanout.deliver(NODE, 'BTC_USD', 1, scheduler.now());
    c.call.writableLength = 16;
    fanout.deliver(NODE, 'BTC_USD', 2, scheduler.now());
    scheduler.flush();
    expect(batches(c.call, 'w')).toEqual([[{ pair: 'BTC_USD', price: 1, node: NODE }]]);
    expect(dropped()).toBe(1);
  });

  test('each dropped update is counted once per watch it missed', () => {
    const { fanout, cli, scheduler, dropped } = setup();
    const c = cli();
    fanout.watch(c.session, 'a', null, true);
    fanout.watch(c.session, 'b', null, true);
    c.call.writableLength = 16;
    fanout.deliver(NODE, 'BTC_USD', 1, scheduler.now());
    expect(dropped()).toBe(2);
  });

  test('one that has taken nothing for longer than the slow-watcher limit is disconnected as slow_consumer', () => {
    const { fanout, cli, scheduler } = setup({ slowWatcherMs: 5000 });
    const c = cli();
    fanout.watch(c.session, 'w', null, false);
    fanout.deliver(NODE, 'BTC_USD', 1, scheduler.now()); // last write: now
    c.call.writableLength = 50;
    scheduler.advance(5000);
    fanout.deliver(NODE, 'BTC_USD', 2, scheduler.now());
    expect(c.closed).toEqual([]); // exactly the limit: still in time
    scheduler.advance(1);
    fanout.deliver(NODE, 'BTC_USD', 3, scheduler.now());
    expect(c.closed).toEqual(['slow_consumer']);
    expect(c.call.status).toMatchObject({
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: 'not reading its watch',
    });
  });

  test('dropped updates do not count as written: the slow-watcher clock keeps running through them', () => {
    const { fanout, cli, scheduler } = setup({ slowWatcherMs: 1000 });
    const c = cli();
    fanout.watch(c.session, 'w', null, true);
    c.call.writableLength = 16;
    for (let t = 0; t < 4; t++) {
      scheduler.advance(300);
      fanout.deliver(NODE, 'BTC_USD', t + 1, scheduler.now());
    }
    // 1200 ms since the stream opened, every update dropped: gone.
    expect(c.closed).toEqual(['slow_consumer']);
  });

  test('the slow-watcher clock starts when the stream opened, not at its first update', () => {
    const { fanout, cli, scheduler } = setup({ slowWatcherMs: 1000 });
    const c = cli();
    scheduler.advance(1001);
    fanout.watch(c.session, 'w', null, false);
    c.call.writableLength = 50;
    fanout.deliver(NODE, 'BTC_USD', 1, scheduler.now());
    expect(c.closed).toEqual(['slow_consumer']);
  });

  test('a slow watcher does not hold up the others', () => {
    const { fanout, cli, scheduler } = setup({ slowWatcherMs: 0 });
    const slow = cli();
    const quick = cli();
    fanout.watch(slow.session, 'w', null, false);
    fanout.watch(quick.session, 'w', null, false);
    slow.call.writableLength = 50;
    scheduler.advance(1);
    fanout.deliver(NODE, 'BTC_USD', 1, scheduler.now());
    expect(slow.closed).toEqual(['slow_consumer']);
    expect(quick.call.written).toHaveLength(1);
  });
});
