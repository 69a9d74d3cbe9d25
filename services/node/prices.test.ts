import { seededRandom } from '../shared/scheduler';
import { PriceSimulator } from './prices';

describe('PriceSimulator.seedPrice', () => {
  test('is the same for the same pair, across instances and randomness', () => {
    const a = new PriceSimulator(seededRandom(1));
    const b = new PriceSimulator(() => 0.99);
    for (const pair of ['USD_HKD', 'BTC_USD', 'EUR_USD']) {
      expect(a.seedPrice(pair)).toBe(a.seedPrice(pair));
      expect(a.seedPrice(pair)).toBe(b.seedPrice(pair));
    }
  });

  test('differs between pairs', () => {
    const sim = new PriceSimulator(seededRandom(1));
    const pairs = ['USD_HKD', 'BTC_USD', 'EUR_USD', 'GBP_USD', 'USD_JPY', 'ETH_USD'];
    expect(new Set(pairs.map((p) => sim.seedPrice(p))).size).toBe(pairs.length);
  });

  test('is positive and within the documented 0.5 to 200.5 range, at most six decimals', () => {
    const sim = new PriceSimulator(seededRandom(1));
    for (let i = 0; i < 500; i++) {
      const p = sim.seedPrice(`C${i}_USD`);
      expect(p).toBeGreaterThanOrEqual(0.5);
      expect(p).toBeLessThan(200.5);
      expect(Math.round(p * 1e6) / 1e6).toBe(p);
    }
  });
});

describe('PriceSimulator.next', () => {
  test('each step stays within ±0.1% of the previous price', () => {
    const sim = new PriceSimulator(seededRandom(42));
    let price = 7.8;
    for (let i = 0; i < 10_000; i++) {
      const next = sim.next(price);
      // Rounding to six decimals may add at most half a micro-unit.
      expect(Math.abs(next - price)).toBeLessThanOrEqual(price * 0.001 + 5e-7);
      price = next;
    }
  });

  test('the extremes of the random draw move the price by almost exactly 0.1% down or up', () => {
    expect(new PriceSimulator(() => 0).next(1000)).toBe(999);
    expect(new PriceSimulator(() => 0.5).next(1000)).toBe(1000);
    expect(new PriceSimulator(() => 0.999999).next(1000)).toBeCloseTo(1000.999998, 6);
  });

  test('never reaches zero or goes negative, even from a tiny price falling every step', () => {
    const sim = new PriceSimulator(() => 0);
    let price = 0.000002;
    for (let i = 0; i < 1000; i++) {
      price = sim.next(price);
      expect(price).toBeGreaterThan(0);
    }
    expect(price).toBeGreaterThanOrEqual(1e-6);
  });

  test('a price that would round to zero is held at the floor of one millionth', () => {
    expect(new PriceSimulator(() => 0).next(1e-7)).toBe(1e-6);
    expect(new PriceSimulator(() => 0).next(0)).toBe(1e-6);
  });

  test('a long seeded walk stays positive and actually moves', () => {
    const sim = new PriceSimulator(seededRandom(9));
    const start = sim.seedPrice('USD_HKD');
    let price = start;
    const seen = new Set<number>();
    for (let i = 0; i < 5000; i++) {
      price = sim.next(price);
      expect(price).toBeGreaterThan(0);
      seen.add(price);
    }
    expect(seen.size).toBeGreaterThan(1000);
  });

  test('the same seed gives the same walk', () => {
    const walk = (seed: number) => {
      const sim = new PriceSimulator(seededRandom(seed));
      let p = 100;
      return Array.from({ length: 50 }, () => (p = sim.next(p)));
    };
    expect(walk(5)).toEqual(walk(5));
    expect(walk(5)).not.toEqual(walk(6));
  });
});
