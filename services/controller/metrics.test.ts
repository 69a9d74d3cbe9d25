import { Registry } from 'prom-client';
import { createControllerMetrics } from './metrics';

describe('price update counting', () => {
  test('updates counted on the hot path show in currency_controller_price_updates_total when read', async () => {
    const registry = new Registry();
    const m = createControllerMetrics(registry, { defaultMetrics: false });
    // The counts since the last read, handed out and reset as the core's pair records do.
    const pending = new Map<string, number>();
    const count = (pair: string, n = 1) => pending.set(pair, (pending.get(pair) ?? 0) + n);
    m.readAtScrapeFrom({
      capable: () => {},
      deviation: () => {},
      updates: (add) => {
        for (const [pair, n] of pending) add(pair, n);
        pending.clear();
      },
    });
    m.priceUpdates.inc({ pair: 'EUR_USD' }, 0);
    count('USD_HKD');
    count('USD_HKD', 4);
    count('BTC_USD');
    const read = async () =>
      Object.fromEntries(
        (await m.priceUpdates.get()).values.map((v) => [v.labels.pair as string, v.value]),
      );
    expect(await read()).toEqual({ EUR_USD: 0, USD_HKD: 5, BTC_USD: 1 });
    // Counted once: reading again adds nothing; later updates add on.
    expect(await read()).toEqual({ EUR_USD: 0, USD_HKD: 5, BTC_USD: 1 });
    count('EUR_USD', 2);
    expect(await registry.metrics()).toContain(
      'currency_controller_price_updates_total{pair="EUR_USD"} 2',
    );
  });
});
