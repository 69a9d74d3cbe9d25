import { fakeScheduler } from '../../../tests/support/fake-scheduler';
import { marketPrice, simulatedMarket } from '../prices';
import { createSimulatedUpstream } from './simulated';
import type { Quote } from './types';

test('a read is the market price at the very instant it is stamped with, however the clock moves', () => {
  const clock = fakeScheduler();
  // A clock that moves on between any two looks at it (a millisecond boundary crossed).
  let drift = 0;
  const ticking = { ...clock, now: () => clock.now() + (drift += 1) };
  const quotes: [string, Quote][] = [];
  const upstream = createSimulatedUpstream(
    simulatedMarket(),
    { quote: (pair, q) => quotes.push([pair, q]), failure: () => {} },
    ticking,
  );
  for (let i = 0; i < 50; i++) upstream.read!('USD_HKD');
  expect(quotes).toHaveLength(50);
  for (const [pair, q] of quotes) expect(q.price).toBe(marketPrice(pair, q.atMs));
});
