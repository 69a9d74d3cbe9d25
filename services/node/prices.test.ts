import { seededRandom } from '../shared/scheduler';
import {
  MAX_LOG_DEVIATION,
  MAX_RELATIVE_SLOPE_PER_MS,
  marketPrice,
  referencePrice,
  simulatedMarket,
} from './prices';

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;

describe('referencePrice', () => {
  test('is stable per pair, familiar pairs at their real-world level', () => {
    expect(referencePrice('USD_HKD')).toBe(7.8);
    expect(referencePrice('C1_USD')).toBe(referencePrice('C1_USD'));
  });

  test('differs between pairs, and is positive within 0.5 to 200.5 with at most six decimals', () => {
    const pairs = Array.from({ length: 500 }, (_, i) => `C${i}_USD`);
    const levels = pairs.map(referencePrice);
    expect(new Set(levels).size).toBeGreaterThan(490);
    for (const p of levels) {
      expect(p).toBeGreaterThanOrEqual(0.5);
      expect(p).toBeLessThan(200.5);
      expect(Math.round(p * 1e6) / 1e6).toBe(p);
    }
  });
});

describe('marketPrice: one market for every node', () => {
  test('is a function of (pair, time): every reader sees the same price', () => {
    let now = T0;
    const a = simulatedMarket();
    const b = simulatedMarket();
    for (let i = 0; i < 100; i++, now += 3_217) {
      expect(a.latest('USD_HKD', now)).toBe(b.latest('USD_HKD', now));
      expect(a.latest('USD_HKD', now)).toBe(marketPrice('USD_HKD', now));
    }
    expect(marketPrice('USD_HKD', T0)).not.toBe(marketPrice('EUR_USD', T0));
  });

  test('two streamers of one pair with interleaved update times agree to within one step', () => {
    // Two nodes, each with its own random 2-10 s interval, as CONTROLLER_STREAMS_PER_PAIR=2
    // runs them; what a watcher sees is the merge of both streams in time order.
    const random = seededRandom(7);
    const updates: { atMs: number; price: number; node: string }[] = [];
    for (const node of ['a', 'b']) {
      let at = T0 + Math.floor(random() * 2000);
      while (at < T0 + 6 * HOUR) {
        updates.push({ atMs: at, price: marketPrice('EUR_USD', at), node });
        at += 2000 + Math.floor(random() * 8001);
      }
    }
    updates.sort((x, y) => x.atMs - y.atMs);
    let switches = 0;
    for (let i = 1; i < updates.length; i++) {
      const [prev, cur] = [updates[i - 1]!, updates[i]!];
      if (prev.node !== cur.node) switches++;
      const dt = cur.atMs - prev.atMs;
      // At most the market's own move in that time (plus rounding): no zig-zag between walks.
      const bound = prev.price * MAX_RELATIVE_SLOPE_PER_MS * dt + 1e-6;
      expect(Math.abs(cur.price - prev.price)).toBeLessThanOrEqual(bound);
      // One step of the default interval (10 s at most) is well under half a percent.
      expect(Math.abs(cur.price - prev.price) / prev.price).toBeLessThan(0.005);
    }
    expect(switches).toBeGreaterThan(1000);
  });

  test('a long run stays positive and bounded around the level (no drift), yet moves', () => {
    for (const pair of ['USD_HKD', 'BTC_USD', 'C42_USD']) {
      const level = referencePrice(pair);
      let min = Infinity;
      let max = -Infinity;
      // A year, every 50 minutes and a bit: longer than the slowest wave many times over.
      for (let t = T0; t < T0 + 365 * 24 * HOUR; t += 3_000_017) {
        const p = marketPrice(pair, t);
        min = Math.min(min, p);
        max = Math.max(max, p);
      }
      expect(min).toBeGreaterThan(0);
      expect(min).toBeGreaterThanOrEqual(level * Math.exp(-MAX_LOG_DEVIATION) - 1e-6);
      expect(max).toBeLessThanOrEqual(level * Math.exp(MAX_LOG_DEVIATION) + 1e-6);
      expect(MAX_LOG_DEVIATION).toBeLessThan(0.1);
      // It is a market, not a constant: it uses a good part of its range.
      expect((max - min) / level).toBeGreaterThan(0.05);
    }
  });

  test('is smooth: a millisecond apart, prices differ by at most rounding', () => {
    for (let t = T0; t < T0 + HOUR; t += 60_007) {
      const p = marketPrice('GBP_USD', t);
      expect(Math.abs(marketPrice('GBP_USD', t + 1) - p)).toBeLessThanOrEqual(2e-6);
    }
  });

  test('prices carry at most six decimals', () => {
    const p = marketPrice('USD_JPY', T0 + 12_345);
    expect(Math.round(p * 1e6) / 1e6).toBe(p);
  });
});
