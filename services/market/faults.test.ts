import { marketPrice } from '../node/prices';
import { silentLogger } from '../shared/logger';
import { FAULT_MODES, type FaultMode, STALE_MS, createFaultTable, priceView } from './faults';
import { KNOWN_PAIRS } from './symbols';

const table = () => createFaultTable(KNOWN_PAIRS, silentLogger());

describe('the fault table', () => {
  test('the most specific fault wins: symbol and client, symbol, client, everything', () => {
    const t = table();
    expect(t.modeFor('USDHKD', 'a')).toBeUndefined();
    t.set({ mode: 'timeout' });
    expect(t.modeFor('USDHKD', 'a')).toBe('timeout');
    t.set({ client: 'a', mode: 'reset' });
    expect(t.modeFor('USDHKD', 'a')).toBe('reset');
    expect(t.modeFor('USDHKD', 'b')).toBe('timeout');
    t.set({ symbol: 'usd-hkd', mode: 'nan' });
    expect(t.modeFor('USDHKD', 'a')).toBe('nan');
    expect(t.modeFor('USDJPY', 'a')).toBe('reset');
    t.set({ symbol: 'USDHKD', client: 'a', mode: 'zero' });
    expect(t.modeFor('USDHKD', 'a')).toBe('zero');
    expect(t.modeFor('USDHKD', 'b')).toBe('nan');
    // A connect asks without a symbol: only client-wide and market-wide faults count.
    expect(t.modeFor(undefined, 'a')).toBe('reset');
    // No client given: faults for a client never apply.
    expect(t.modeFor('USDJPY', '')).toBe('timeout');
  });

  test('a symbol is stored as BASEQUOTE, and a later fault for the same target replaces it', () => {
    const t = table();
    t.set({ symbol: 'usd_hkd', client: 'a', mode: 'html' });
    t.set({ symbol: 'USDHKD', client: 'a', mode: 'stale' });
    expect(t.list()).toEqual([{ symbol: 'USDHKD', client: 'a', mode: 'stale' }]);
    t.clear();
    expect(t.list()).toEqual([]);
    expect(t.modeFor('USDHKD', 'a')).toBeUndefined();
  });

  test('invalid faults are refused with a reason', () => {
    const t = table();
    expect(() => t.set({ mode: 'explode' as FaultMode })).toThrow(/mode must be one of http_500/);
    expect(() => t.set({ symbol: 'not a symbol', mode: 'nan' })).toThrow(/is not a symbol/);
    expect(() => t.set({ mode: 'nan', extra: 1 } as never)).toThrow();
    expect(t.list()).toEqual([]);
  });

  test('at most 1024 faults at a time; replacing one is still allowed', () => {
    const t = table();
    for (let i = 0; i < 1024; i++) t.set({ client: `c${i}`, mode: 'nan' });
    expect(() => t.set({ client: 'one-more', mode: 'nan' })).toThrow(/at most 1024 faults/);
    t.set({ client: 'c0', mode: 'zero' });
    expect(t.modeFor(undefined, 'c0')).toBe('zero');
    expect(t.list()).toHaveLength(1024);
  });
});

describe('priceView', () => {
  const t = 1_700_000_000_000;
  const p = marketPrice('USD_HKD', t);

  test('without a price fault: the market price now', () => {
    expect(priceView('USD_HKD', undefined, t)).toEqual({ price: p, timeMs: t });
    expect(priceView('USD_HKD', 'timeout', t)).toEqual({ price: p, timeMs: t });
  });

  test('price faults', () => {
    expect(priceView('USD_HKD', 'missing', t)).toEqual({ price: undefined, timeMs: t });
    expect(priceView('USD_HKD', 'nan', t)).toEqual({ price: NaN, text: 'NaN', timeMs: t });
    expect(priceView('USD_HKD', 'negative', t)).toEqual({ price: -p, timeMs: t });
    expect(priceView('USD_HKD', 'zero', t)).toEqual({ price: 0, timeMs: t });
    expect(priceView('USD_HKD', 'stale', t)).toEqual({
      price: marketPrice('USD_HKD', t - STALE_MS),
      timeMs: t - STALE_MS,
    });
  });

  test('every mode is listed once', () => {
    expect(new Set(FAULT_MODES).size).toBe(FAULT_MODES.length);
  });
});
