import { KNOWN_PAIRS, resolveSymbol } from './symbols';

describe('resolveSymbol', () => {
  test.each([
    ['USDHKD', 'USDHKD', 'USD_HKD'],
    ['usd_hkd', 'USDHKD', 'USD_HKD'],
    [' usd-hkd ', 'USDHKD', 'USD_HKD'],
    ['ETH/BTC', 'ETHBTC', 'ETH_BTC'],
    // A known pair splits where it should, not after three characters.
    ['DOGEUSD', 'DOGEUSD', 'DOGE_USD'],
    ['btcusdt', 'BTCUSDT', 'BTC_USDT'],
    // Unknown: after the first three characters.
    ['ABCDEF', 'ABCDEF', 'ABC_DEF'],
  ])('%j is %s (%s)', (raw, symbol, pair) => {
    expect(resolveSymbol(raw)).toEqual({ symbol, pair });
  });

  test.each([[''], ['USD'], ['USD HKD'], ['USD_HKD_JPY'], ['A'.repeat(17)], ['{}']])(
    '%j is not a symbol',
    (raw) => {
      expect(resolveSymbol(raw)).toBeUndefined();
    },
  );

  test('the pairs given replace the known ones', () => {
    expect(resolveSymbol('DOGEUSD', ['DOG_EUSD'])).toEqual({ symbol: 'DOGEUSD', pair: 'DOG_EUSD' });
    expect(resolveSymbol('DOGEUSD', [])).toEqual({ symbol: 'DOGEUSD', pair: 'DOG_EUSD' });
    expect(KNOWN_PAIRS).toContain('DOGE_USD');
  });
});
