import { silentLogger } from '../shared/logger';
import { fakeScheduler, type FakeScheduler } from '../../tests/support/fake-scheduler';
import { marketPrice, simulatedMarket } from './prices';
import { PairStreamer, type PriceSink, type PriceUpdate } from './streamer';
import { createSimulatedUpstream } from './upstream/simulated';

interface Sent {
  frames: PriceUpdate[][];
  dropped: number;
}

function setup(
  opts: { batches?: boolean; backedUp?: boolean; intervalMs?: number; ready?: boolean } = {},
) {
  const clock: FakeScheduler = fakeScheduler();
  const sent: Sent = { frames: [], dropped: 0 };
  const sink: PriceSink = {
    ready: () => opts.ready ?? true,
    backedUp: () => opts.backedUp ?? false,
    takesBatches: () => opts.batches ?? false,
    sendOne: (u) => sent.frames.push([u]),
    sendBatch: (us) => sent.frames.push(us),
    dropped: (n) => (sent.dropped += n),
  };
  // The default upstream (NODE_UPSTREAM=simulated), read as the node reads it.
  const upstream = createSimulatedUpstream(
    simulatedMarket(),
    { quote: (pair, q) => streamer.offer(pair, q), failure: () => {} },
    clock,
  );
  const streamer: PairStreamer = new PairStreamer({
    scheduler: clock,
    random: () => 0.5,
    source: { pull: true, read: (pair) => upstream.read!(pair) },
    intervalMs: { minMs: opts.intervalMs ?? 5000, maxMs: opts.intervalMs ?? 5000 },
    spanSampleRatio: 0,
    sink,
    log: silentLogger(),
  });
  const updates = () => sent.frames.flat();
  return { clock, sent, streamer, updates };
}

test('a started pair gets a first price at once, the market price stamped with our own now', () => {
  const { clock, streamer, updates } = setup();
  streamer.start('USD_HKD', undefined);
  expect(updates()).toEqual([
    {
      currencyPair: 'USD_HKD',
      price: marketPrice('USD_HKD', clock.now()),
      updatedAtMs: clock.now(),
    },
  ]);
  clock.advance(5000);
  expect(updates()).toHaveLength(2);
  expect(updates()[1]!.updatedAtMs).toBe(clock.now());
});

test('the market price is the one at the instant of its stamp, however the clock moves between looks', () => {
  const { clock, streamer, updates } = setup({ intervalMs: 1000 });
  const now = clock.now.bind(clock);
  // A clock that moves on between any two looks at it (a millisecond boundary crossed).
  let drift = 0;
  clock.now = () => now() + (drift += 0.5);
  streamer.start('USD_HKD', undefined);
  streamer.start('EUR_USD', undefined);
  clock.advance(10_000);
  expect(updates().length).toBeGreaterThan(10);
  for (const u of updates()) expect(u.price).toBe(marketPrice(u.currencyPair, u.updatedAtMs));
});

test('a controller price stamped ahead of our clock is never carried into our stamps', () => {
  // Today's bug: updatedAtMs = max(now, last + 1) turned a controller stamp an hour ahead
  // into every later price of ours.
  const { clock, streamer, updates } = setup();
  const t0 = clock.now();
  streamer.start('USD_HKD', t0 + 3_600_000);
  for (let i = 0; i < 100; i++) {
    clock.advance(5000);
    for (const u of updates()) expect(u.updatedAtMs).toBeLessThanOrEqual(clock.now());
  }
  // Nothing is sent that the controller would only refuse as older than its latest...
  expect(updates()).toHaveLength(0);
  // ...until our clock has passed it; then prices flow, stamped with our own now.
  clock.advance(3_600_000 - 500_000 + 5000);
  const first = updates()[0]!;
  expect(first.updatedAtMs).toBeGreaterThan(t0 + 3_600_000);
  expect(first.updatedAtMs).toBeLessThanOrEqual(t0 + 3_600_000 + 5000);
  for (const u of updates()) expect(u.updatedAtMs).toBeLessThanOrEqual(clock.now());
});

test('a controller stamp slightly ahead delays the first price only until our clock passes it', () => {
  const { clock, streamer, updates } = setup();
  const t0 = clock.now();
  streamer.start('EUR_USD', t0 + 300);
  expect(updates()).toHaveLength(0);
  clock.advance(300);
  expect(updates()).toHaveLength(0); // a stamp equal to the controller's is not newer
  clock.advance(1);
  expect(updates()).toHaveLength(1);
  expect(updates()[0]!.updatedAtMs).toBe(t0 + 301);
});

test('stamps strictly increase per pair, also across a stop and restart in the same millisecond', () => {
  const { clock, streamer, updates } = setup();
  streamer.start('USD_HKD', undefined);
  streamer.stop('USD_HKD');
  streamer.start('USD_HKD', undefined); // same ms: would repeat the stamp
  clock.advance(1);
  const stamps = updates().map((u) => u.updatedAtMs);
  expect(stamps).toEqual([...new Set(stamps)].sort((a, b) => a - b));
  expect(stamps).toHaveLength(2);
});

test('an older controller price changes nothing: prices are the market at our now', () => {
  const { clock, streamer, updates } = setup();
  streamer.start('BTC_USD', clock.now() - 3_600_000);
  expect(updates()[0]!.price).toBe(marketPrice('BTC_USD', clock.now()));
});

test('updates falling due in one turn go as one batch when the controller takes batches', () => {
  const { clock, sent, streamer } = setup({ batches: true });
  streamer.start('USD_HKD', undefined);
  streamer.start('EUR_USD', undefined);
  streamer.start('BTC_USD', undefined);
  streamer.stop('EUR_USD'); // stopped before the flush: not sent
  expect(sent.frames).toHaveLength(0); // flushed through the scheduler's immediate
  clock.flush();
  expect(sent.frames).toHaveLength(1);
  expect(sent.frames[0]!.map((u) => u.currencyPair).sort()).toEqual(['BTC_USD', 'USD_HKD']);
  // One update due alone still goes alone.
  clock.advance(5000);
  expect(sent.frames.slice(1).every((f) => f.length === 1)).toBe(true);
});

test('a backed-up stream drops updates instead of queueing them', () => {
  const { sent, streamer } = setup({ backedUp: true });
  streamer.start('USD_HKD', undefined);
  expect(sent.frames).toHaveLength(0);
  expect(sent.dropped).toBe(1);
});

test('stopAll cancels every timer and the pending batch', () => {
  const { clock, sent, streamer } = setup({ batches: true });
  streamer.start('USD_HKD', undefined);
  streamer.start('EUR_USD', undefined);
  streamer.stopAll();
  expect(clock.pending()).toBe(0);
  clock.advance(60_000);
  expect(sent.frames).toHaveLength(0);
  expect(streamer.pairs()).toEqual([]);
});
