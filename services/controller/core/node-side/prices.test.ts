/**
 * PriceStore (prices.ts): the latest price of each pair (stored and forwarded), and the
 * latest each streamer of a pair sent, for a standby's promotion and the deviation gauge.
 */
import { PriceStore } from './prices';

const A = 'node-a';
const B = 'node-b';
const C = 'node-c';

describe('the latest price of a pair', () => {
  test('only a strictly newer price is kept, so watchers and the next streamer never step back in time', () => {
    const s = new PriceStore();
    expect(s.offer({ pair: 'BTC_USD', price: 1, updatedAtMs: 100, nodeUuid: A })).toBe(true);
    expect(s.offer({ pair: 'BTC_USD', price: 2, updatedAtMs: 100, nodeUuid: B })).toBe(false);
    expect(s.offer({ pair: 'BTC_USD', price: 3, updatedAtMs: 99, nodeUuid: B })).toBe(false);
    expect(s.get('BTC_USD')).toEqual({ pair: 'BTC_USD', price: 1, updatedAtMs: 100, nodeUuid: A });
    expect(s.offer({ pair: 'BTC_USD', price: 4, updatedAtMs: 100.5, nodeUuid: B })).toBe(true);
    expect(s.get('BTC_USD')?.price).toBe(4);
  });

  test('the store keeps its own record: neither the offered object nor a copy handed out is tied to it', () => {
    const s = new PriceStore();
    const offered = { pair: 'BTC_USD', price: 1, updatedAtMs: 100, nodeUuid: A };
    s.offer(offered);
    const earlier = s.get('BTC_USD')!;
    offered.price = 99;
    earlier.price = 98;
    s.all()[0]!.price = 97;
    expect(s.get('BTC_USD')).toEqual({ pair: 'BTC_USD', price: 1, updatedAtMs: 100, nodeUuid: A });
    // The record is updated in place; what was handed out before does not follow it.
    expect(s.offer({ pair: 'BTC_USD', price: 2, updatedAtMs: 101, nodeUuid: B })).toBe(true);
    expect(s.get('BTC_USD')).toEqual({ pair: 'BTC_USD', price: 2, updatedAtMs: 101, nodeUuid: B });
    expect(earlier).toEqual({ pair: 'BTC_USD', price: 98, updatedAtMs: 100, nodeUuid: A });
    expect(offered).toEqual({ pair: 'BTC_USD', price: 99, updatedAtMs: 100, nodeUuid: A });
  });

  test('pairs are independent, and all() lists them by pair', () => {
    const s = new PriceStore();
    s.offer({ pair: 'USD_JPY', price: 150, updatedAtMs: 1, nodeUuid: A });
    s.offer({ pair: 'BTC_USD', price: 65000, updatedAtMs: 1, nodeUuid: A });
    s.offer({ pair: 'EUR_USD', price: 1.08, updatedAtMs: 1, nodeUuid: B });
    expect(s.all().map((p) => p.pair)).toEqual(['BTC_USD', 'EUR_USD', 'USD_JPY']);
  });

  test("a forgotten pair loses its latest price and every streamer's, and starts afresh", () => {
    const s = new PriceStore();
    s.offer({ pair: 'BTC_USD', price: 1, updatedAtMs: 100, nodeUuid: A });
    s.note('BTC_USD', A, 1, 100, 100);
    s.delete('BTC_USD');
    expect(s.get('BTC_USD')).toBeUndefined();
    expect(s.seenFrom('BTC_USD', A)).toBeUndefined();
    expect(s.offer({ pair: 'BTC_USD', price: 2, updatedAtMs: 1, nodeUuid: B })).toBe(true);
  });
});

describe('what each streamer sent', () => {
  test("a streamer's latest price is kept unless older than its own latest; an equally old one replaces it", () => {
    const s = new PriceStore();
    s.note('BTC_USD', A, 10, 100, 1000);
    s.note('BTC_USD', A, 11, 99, 1001); // older: ignored
    expect(s.seenFrom('BTC_USD', A)).toEqual({
      pair: 'BTC_USD',
      price: 10,
      updatedAtMs: 100,
      nodeUuid: A,
    });
    s.note('BTC_USD', A, 12, 100, 1002);
    expect(s.seenFrom('BTC_USD', A)?.price).toBe(12);
  });

  test('a streamer that stopped streaming the pair no longer counts', () => {
    const s = new PriceStore();
    s.note('BTC_USD', A, 10, 100, 1000);
    s.dropStreamer('BTC_USD', A);
    expect(s.seenFrom('BTC_USD', A)).toBeUndefined();
    expect(() => s.dropStreamer('NOPE_USD', A)).not.toThrow();
  });
});

describe("deviation between a pair's streamers", () => {
  test("is (max - min) / min over each streamer's latest price", () => {
    const s = new PriceStore();
    s.note('BTC_USD', A, 100, 1, 1000);
    s.note('BTC_USD', B, 102, 1, 1000);
    s.note('BTC_USD', C, 101, 1, 1000);
    expect(s.deviation('BTC_USD', 1000, 5000)).toBeCloseTo(0.02, 12);
  });

  test('is 0 with fewer than two streamers', () => {
    const s = new PriceStore();
    expect(s.deviation('BTC_USD', 0, 5000)).toBe(0);
    s.note('BTC_USD', A, 100, 1, 0);
    expect(s.deviation('BTC_USD', 0, 5000)).toBe(0);
  });

  test('counts only prices received within the window, even an older price received again', () => {
    const s = new PriceStore();
    s.note('BTC_USD', A, 100, 1, 0);
    s.note('BTC_USD', B, 150, 1, 0);
    expect(s.deviation('BTC_USD', 4_999, 5_000)).toBeCloseTo(0.5, 12);
    expect(s.deviation('BTC_USD', 5_000, 5_000)).toBe(0);
    // A's older price arriving again still proves A is sending: received now.
    s.note('BTC_USD', A, 90, 0, 6_000);
    s.note('BTC_USD', B, 150, 1, 6_000);
    expect(s.seenFrom('BTC_USD', A)?.price).toBe(100);
    expect(s.deviation('BTC_USD', 6_000, 5_000)).toBeCloseTo(0.5, 12);
  });
});
