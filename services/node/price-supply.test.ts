import { Registry } from 'prom-client';
import { silentLogger } from '../shared/logger';
import { fakeScheduler } from '../../tests/support/fake-scheduler';
import { loadNodeConfig } from './config';
import { createNodeMetrics } from './metrics';
import { PriceSupply } from './price-supply';
import type { PriceUpdate } from './streamer';
import type { Upstream, UpstreamEvents } from './upstream/types';

/** A pull upstream the test answers by hand: `answer` decides each read's event. */
function setup() {
  const clock = fakeScheduler();
  const sent: PriceUpdate[] = [];
  const announced: string[][] = [];
  const reads: string[] = [];
  const followed = new Set<string>();
  let events!: UpstreamEvents;
  let answer: (pair: string) => 'ok' | 'bad' | 'none' = () => 'ok';
  const upstream: Upstream = {
    kind: 'http',
    read: (pair) => {
      reads.push(pair);
      const a = answer(pair);
      if (a === 'ok') events.quote(pair, { price: 7.8, atMs: clock.now() - 1000, ownClock: false });
      if (a === 'bad') events.failure(pair, 'bad_price', 'price is "NaN"');
    },
    follow: (pair) => void followed.add(pair),
    unfollow: (pair) => void followed.delete(pair),
    close: () => Promise.resolve(),
  };
  const config = loadNodeConfig({
    NODE_CURRENCY_PAIRS: 'USD_HKD,EUR_USD',
    NODE_PRICE_INTERVAL_MS: '1000',
    NODE_UPSTREAM: 'http',
    NODE_UPSTREAM_URL: 'http://127.0.0.1:1/{symbol}',
    NODE_UPSTREAM_PRICE_PATH: 'price',
    NODE_UPSTREAM_FAIL_AFTER_MS: '4000',
  });
  const registry = new Registry();
  const metrics = createNodeMetrics(registry, { defaultMetrics: false });
  const supply = new PriceSupply({
    config,
    scheduler: clock,
    random: () => 0.5,
    log: silentLogger(),
    metrics,
    upstream: (e) => ((events = e), upstream),
    sink: {
      ready: () => true,
      backedUp: () => false,
      takesBatches: () => false,
      sendOne: (u) => sent.push(u),
      sendBatch: (us) => sent.push(...us),
      dropped: () => {},
    },
    onKnownChanged: (pairs) => announced.push(pairs),
  });
  const metric = async (name: string, labels: Record<string, string> = {}) =>
    (await registry.getSingleMetric(name)!.get()).values.find((v) =>
      Object.entries(labels).every(([k, x]) => v.labels[k] === x),
    )?.value ?? 0;
  return {
    clock,
    sent,
    announced,
    reads,
    followed,
    supply,
    metric,
    answer: (f: typeof answer) => (answer = f),
  };
}

test('valid upstream prices are sent with the upstream’s own time and counted', async () => {
  const t = setup();
  t.supply.start('USD_HKD', undefined);
  t.clock.advance(3000);
  expect(t.sent).toHaveLength(4); // at once, then every second
  const start = t.clock.now() - 3000;
  expect(t.sent.map((u) => u.updatedAtMs)).toEqual(
    [0, 1000, 2000, 3000].map((ms) => start + ms - 1000),
  );
  expect(t.sent.every((u) => u.price === 7.8)).toBe(true);
  expect(await t.metric('currency_node_upstream_requests_total', { outcome: 'ok' })).toBe(4);
  expect(await t.metric('currency_node_upstream_price_age_seconds', { pair: 'USD_HKD' })).toBe(1);
});

test('bad answers are counted, never sent, and after NODE_UPSTREAM_FAIL_AFTER_MS the pair is withdrawn from the known set', async () => {
  const t = setup();
  t.answer(() => 'bad');
  t.supply.start('USD_HKD', undefined);
  t.supply.start('EUR_USD', undefined);
  t.answer((pair) => (pair === 'USD_HKD' ? 'bad' : 'ok'));
  t.clock.advance(3999);
  expect(t.announced).toEqual([]);
  t.clock.advance(1);
  expect(t.announced).toEqual([['EUR_USD']]);
  expect(t.supply.knownPairs()).toEqual(['EUR_USD']);
  expect(t.supply.pairs()).toEqual(['EUR_USD']);
  expect(t.sent.every((u) => u.currencyPair === 'EUR_USD')).toBe(true);
  // USD_HKD at 0, 1, 2, 3 and 4 s (the failed answer at 4 s withdraws it), EUR_USD at 0.
  expect(await t.metric('currency_node_upstream_requests_total', { outcome: 'bad_price' })).toBe(6);
  expect(await t.metric('currency_node_upstream_withdrawn_pairs')).toBe(1);
  // The controller's view may lag: a start for a withdrawn pair is refused.
  expect(t.supply.start('USD_HKD', undefined)).toBe(false);
});

test('a withdrawn pair is probed at a low rate and offered again once its upstream answers well', () => {
  const t = setup();
  t.answer(() => 'bad');
  t.supply.start('USD_HKD', undefined);
  t.clock.advance(4000);
  const before = t.reads.length;
  t.clock.advance(10_000); // probes every 2 s (failAfter / 2) instead of every second
  expect(t.reads.length - before).toBe(5);
  t.answer(() => 'ok');
  t.clock.advance(6000); // three good probes, past the 4 s hold-down
  expect(t.announced).toEqual([['EUR_USD'], ['USD_HKD', 'EUR_USD']]);
  expect(t.supply.knownPairs()).toEqual(['USD_HKD', 'EUR_USD']);
  expect(t.followed.has('USD_HKD')).toBe(false); // not streaming until the controller asks
  const reads = t.reads.length;
  t.clock.advance(20_000);
  expect(t.reads.length).toBe(reads); // no more probing
});
