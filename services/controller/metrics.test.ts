import { Registry } from 'prom-client';
import { createControllerMetrics } from './metrics';

describe('price update counting', () => {
  test('updates counted on the hot path show in currency_controller_price_updates_total when read', async () => {
    const registry = new Registry();
    const m = createControllerMetrics(registry, { defaultMetrics: false });
    m.priceUpdates.inc({ pair: 'EUR_USD' }, 0);
    m.countPriceUpdates('USD_HKD');
    m.countPriceUpdates('USD_HKD', 4);
    m.countPriceUpdates('BTC_USD');
    const read = async () =>
      Object.fromEntries(
        (await m.priceUpdates.get()).values.map((v) => [v.labels.pair as string, v.value]),
      );
    expect(await read()).toEqual({ EUR_USD: 0, USD_HKD: 5, BTC_USD: 1 });
    // Counted once: reading again adds nothing; later updates add on.
    expect(await read()).toEqual({ EUR_USD: 0, USD_HKD: 5, BTC_USD: 1 });
    m.countPriceUpdates('EUR_USD', 2);
    expect(await registry.metrics()).toContain(
      'currency_controller_price_updates_total{pair="EUR_USD"} 2',
    );
  });
});
