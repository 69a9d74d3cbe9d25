import {
  MAX_FUTURE_MS,
  extractQuote,
  fillTemplate,
  getPath,
  pairVars,
  quoteFor,
  symbolMatches,
  timeFrom,
} from './extract';

const NOW = Date.parse('2026-12-07T12:00:00Z');

test('placeholders are filled per pair, with per-pair symbols winning over the template', () => {
  expect(pairVars('BTC_USD', '{base}-{quote}', {})).toEqual({
    pair: 'BTC_USD',
    base: 'BTC',
    quote: 'USD',
    symbol: 'BTC-USD',
  });
  expect(pairVars('BTC_USD', '{base}{quote}', { BTC_USD: 'btcusdt' }).symbol).toBe('btcusdt');
  expect(
    fillTemplate('/q/{symbol}?x={pair}', { symbol: 'A/B', pair: 'A_B' }, encodeURIComponent),
  ).toBe('/q/A%2FB?x=A_B');
});

test('paths walk keys and array indices, and lead nowhere rather than throw', () => {
  const doc = { data: [{ p: '1.5' }], rates: { HKD: 7.8 } };
  expect(getPath(doc, 'data.0.p')).toBe('1.5');
  expect(getPath(doc, 'rates.HKD')).toBe(7.8);
  expect(getPath(doc, 'data.x.p')).toBeUndefined();
  expect(getPath(doc, 'rates.HKD.deeper')).toBeUndefined();
  expect(getPath(doc, 'constructor')).toBeUndefined();
});

test.each([
  ['2026-12-07T11:59:58Z', NOW - 2000],
  ['2026-12-07T11:59:58.123456+00:00', NOW - 2000 + 123],
  ['2026-12-07', Date.parse('2026-12-07T00:00:00Z')],
  [1796644798, Date.parse('2026-12-07T11:59:58Z')],
  ['1796644798000', Date.parse('2026-12-07T11:59:58Z')],
])('the time %p reads as %p', (raw, ms) => {
  expect(timeFrom(raw)).toBe(ms);
});

test.each([['yesterday'], [''], [-5], [null], [{}], ['2026-13-45']])(
  'the time %p is refused',
  (raw) => {
    expect(timeFrom(raw)).toBeUndefined();
  },
);

test.each([
  [{ price: '7.81' }, 7.81],
  [{ price: 7.81 }, 7.81],
  [{ price: '1e-3' }, 0.001],
])('the price in %o reads as %p', (doc, price) => {
  expect(extractQuote(doc, { pricePath: 'price', maxFutureMs: MAX_FUTURE_MS }, NOW)).toEqual({
    ok: true,
    quote: { price, atMs: NOW, ownClock: true },
  });
});

test.each([
  [{}, 'no_price'],
  [{ price: null }, 'no_price'],
  [{ price: 'NaN' }, 'bad_price'],
  [{ price: 'Infinity' }, 'bad_price'],
  [{ price: -1 }, 'bad_price'],
  [{ price: 0 }, 'bad_price'],
  [{ price: '7,81' }, 'bad_price'],
  [{ price: true }, 'bad_price'],
  [{ price: 1, t: 'soon' }, 'bad_time'],
  [{ price: 1, t: '2026-12-07T10:00:00Z' }, 'stale'],
  [{ price: 1, t: '2026-12-07T12:00:06Z' }, 'future'],
])('%o is no price (%s)', (doc, outcome) => {
  const r = extractQuote(
    doc,
    { pricePath: 'price', timePath: 't', maxAgeMs: 60_000, maxFutureMs: MAX_FUTURE_MS },
    NOW,
  );
  expect(r.ok ? 'ok' : r.outcome).toBe(outcome);
});

test('quoteFor fills the paths for the pair and reads its quote', () => {
  const btc = pairVars('BTC_USD', '{base}{quote}', {});
  const doc = { BTCUSD: { p: '64000.5', t: '2026-12-07T11:59:59Z' }, ETHUSD: { p: 'x' } };
  const paths = { pricePath: '{symbol}.p', timePath: '{symbol}.t', maxAgeMs: 60_000 };
  expect(quoteFor(doc, paths, btc, NOW)).toEqual({
    ok: true,
    quote: { price: 64000.5, atMs: NOW - 1000, ownClock: false },
  });
  expect(quoteFor(doc, { pricePath: '{symbol}.p' }, btc, NOW)).toEqual({
    ok: true,
    quote: { price: 64000.5, atMs: NOW, ownClock: true },
  });
  const eth = pairVars('ETH_USD', '{base}{quote}', {});
  expect(quoteFor(doc, paths, eth, NOW)).toMatchObject({ ok: false, outcome: 'bad_price' });
  expect(quoteFor(doc, { ...paths, maxAgeMs: 500 }, btc, NOW)).toMatchObject({
    ok: false,
    outcome: 'stale',
  });
  const future = { BTCUSD: { p: 1, t: NOW + MAX_FUTURE_MS + 1 } };
  expect(quoteFor(future, paths, btc, NOW)).toMatchObject({ ok: false, outcome: 'future' });
});

test('symbolMatches: a string or number naming the pair, in any case', () => {
  const v = pairVars('BTC_USD', '{base}{quote}', {});
  expect(symbolMatches('btcusd', v)).toBe(true);
  expect(symbolMatches('BTCUSD', v)).toBe(true);
  expect(symbolMatches('ETHUSD', v)).toBe(false);
  expect(symbolMatches(undefined, v)).toBe(false);
  expect(symbolMatches({ s: 'BTCUSD' }, v)).toBe(false);
  expect(symbolMatches(42, pairVars('X_Y', '{base}{quote}', { X_Y: '42' }))).toBe(true);
});
