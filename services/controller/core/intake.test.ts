/**
 * The checks every inbound node frame passes before any logic (intake.ts): the node UUID
 * a stream claims, the pairs a node announces, and each price. checkCliFrame has its own
 * file (check-cli-frame.test.ts). Checks return results and never throw.
 */
import type { StreamFromNode } from '../../gen/protobuf/currency_nodes';
import type { MessageOf } from '../../shared/any';
import { timestampFromMs } from '../../shared/time';
import { PRICE_REFUSALS, checkAnnouncedPairs, checkNodeUuid, checkPrice } from './intake';

const UUID = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const OTHER = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';

const frame = (nodeUuid: string): StreamFromNode => ({ nodeUuid, traceContext: {} });

describe('checkNodeUuid: the UUID a node stream claims', () => {
  test('the first frame claims a UUID, kept in canonical lower case', () => {
    expect(checkNodeUuid(frame(UUID.toUpperCase()), undefined)).toEqual({ ok: true, value: UUID });
  });

  test('later frames repeating the claimed UUID pass, in either case', () => {
    expect(checkNodeUuid(frame(UUID), UUID)).toEqual({ ok: true, value: UUID });
    expect(checkNodeUuid(frame(UUID.toUpperCase()), UUID)).toEqual({ ok: true, value: UUID });
  });

  test('a different UUID on the same stream is refused, naming both', () => {
    expect(checkNodeUuid(frame(OTHER), UUID)).toEqual({
      ok: false,
      problem: `node_uuid changed from ${UUID} to ${OTHER} on one stream`,
    });
  });

  test.each(['', 'node-1', UUID.slice(1), `${UUID} `, UUID.replace(/-/g, '')])(
    'a node_uuid that is not a UUID (%p) is refused and quoted',
    (bad) => {
      expect(checkNodeUuid(frame(bad), undefined)).toEqual({
        ok: false,
        problem: `node_uuid "${bad}" is not a UUID`,
      });
    },
  );

  test('a huge bad node_uuid is quoted to 64 characters at most', () => {
    const r = checkNodeUuid(frame('x'.repeat(100_000)), undefined);
    expect(r).toEqual({ ok: false, problem: `node_uuid "${'x'.repeat(64)}" is not a UUID` });
  });
});

describe('checkAnnouncedPairs: the pairs a node announces', () => {
  test('valid pairs are kept once each; each invalid one is a problem of its own', () => {
    const r = checkAnnouncedPairs([
      'BTC_USD',
      'btc_usd',
      'BTC_USD',
      'EURUSD',
      'A_B_C',
      '',
      'X1_Y2',
    ]);
    expect([...r.pairs]).toEqual(['BTC_USD', 'X1_Y2']);
    expect(r.problems).toEqual([
      'invalid pair "btc_usd"',
      'invalid pair "EURUSD"',
      'invalid pair "A_B_C"',
      'invalid pair ""',
    ]);
  });

  test('a pair of up to 64 characters is valid; a longer one is refused and quoted to 32', () => {
    const ok = `${'A'.repeat(31)}_${'B'.repeat(32)}`;
    const long = `${'A'.repeat(32)}_${'B'.repeat(32)}`;
    const r = checkAnnouncedPairs([ok, long]);
    expect([...r.pairs]).toEqual([ok]);
    expect(r.problems).toEqual([`invalid pair "${'A'.repeat(32)}"`]);
  });

  test('an empty announcement is valid: a node that can stream nothing right now', () => {
    expect(checkAnnouncedPairs([])).toEqual({ pairs: new Set(), problems: [] });
  });
});

describe('checkPrice: each price a node sends', () => {
  const NOW = 1_700_000_000_000;
  const SKEW = 2_000;
  const price = (p: number, ts?: MessageOf<'NodePriceUpdateV1Notify'>['priceUpdatedAt']) => ({
    currencyPair: 'BTC_USD',
    price: p,
    priceUpdatedAt: ts,
  });

  test('a finite positive price is taken with its own time', () => {
    expect(checkPrice(price(0.0001, timestampFromMs(NOW - 5_000)), NOW, SKEW)).toEqual({
      ok: true,
      updatedAtMs: NOW - 5_000,
    });
  });

  test('a missing timestamp means now', () => {
    expect(checkPrice(price(1), NOW, SKEW)).toEqual({ ok: true, updatedAtMs: NOW });
  });

  test.each([0, -0, -1, Number.NaN, Infinity, -Infinity])(
    'a price of %p is refused as not_positive',
    (p) => {
      const r = checkPrice(price(p), NOW, SKEW);
      expect(r).toMatchObject({ ok: false, reason: 'not_positive' });
      expect(!r.ok && r.problem).toContain('BTC_USD is not a finite positive number');
    },
  );

  test.each([
    ['nanos of a billion', { seconds: 1, nanos: 1e9 }],
    ['negative nanos', { seconds: 1, nanos: -1 }],
    ['fractional nanos', { seconds: 1, nanos: 0.5 }],
    ['non-finite seconds', { seconds: Infinity, nanos: 0 }],
    ['before 1970', { seconds: -1, nanos: 0 }],
    ['beyond what a Date can hold', { seconds: 8.64e12 + 1, nanos: 0 }],
  ])('a timestamp with %s is refused as bad_timestamp', (_what, ts) => {
    expect(checkPrice(price(1, ts), 9e15, SKEW)).toMatchObject({
      ok: false,
      reason: 'bad_timestamp',
      problem: 'timestamp of BTC_USD is not a valid instant',
    });
  });

  test('a price dated up to the skew limit ahead is taken; one millisecond more is refused as future', () => {
    expect(checkPrice(price(1, timestampFromMs(NOW + SKEW)), NOW, SKEW).ok).toBe(true);
    expect(checkPrice(price(1, timestampFromMs(NOW + SKEW + 1)), NOW, SKEW)).toEqual({
      ok: false,
      reason: 'future',
      problem: `price of BTC_USD is dated ${SKEW + 1} ms ahead of the controller's clock (limit ${SKEW} ms)`,
    });
  });

  test('sub-millisecond precision is kept, so "newer" is decided on the whole timestamp', () => {
    const r = checkPrice(price(1, { seconds: 1_700_000_000, nanos: 250_500 }), NOW, SKEW);
    expect(r).toEqual({ ok: true, updatedAtMs: 1_700_000_000_000.2505 });
  });

  test('the refusal reasons are exactly the metric labels', () => {
    expect([...PRICE_REFUSALS].sort()).toEqual(['bad_timestamp', 'future', 'not_positive']);
  });

  test('the price is checked before its timestamp', () => {
    expect(checkPrice(price(-1, { seconds: 1, nanos: -5 }), NOW, SKEW)).toMatchObject({
      reason: 'not_positive',
    });
  });
});
