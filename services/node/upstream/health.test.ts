import { fakeScheduler } from '../../../tests/support/fake-scheduler';
import { MAX_HOLD_MS, RESTORE_STREAK, UpstreamHealth, probeIntervalMs } from './health';

function setup(failAfterMs = 10_000, withProbe = true, waiting?: (pair: string) => boolean) {
  const clock = fakeScheduler();
  const events: string[] = [];
  const probes: string[] = [];
  const health = new UpstreamHealth({
    scheduler: clock,
    failAfterMs,
    onWithdraw: (pair) => events.push(`withdraw ${pair}`),
    onRestore: (pair) => events.push(`restore ${pair}`),
    probe: withProbe ? (pair) => probes.push(pair) : undefined,
    waiting,
  });
  return { clock, events, probes, health };
}

test('a streamed pair with valid prices is never withdrawn', () => {
  const { clock, events, health } = setup();
  health.streaming('USD_HKD');
  for (let i = 0; i < 20; i++) {
    clock.advance(5_000);
    health.good('USD_HKD');
  }
  expect(events).toEqual([]);
  expect(health.isWithdrawn('USD_HKD')).toBe(false);
});

test('a pull upstream’s pair is withdrawn at its first failed answer once it gave no valid price for failAfterMs, not before', () => {
  const { clock, events, health } = setup();
  health.streaming('USD_HKD');
  clock.advance(4_000);
  health.good('USD_HKD');
  health.bad('USD_HKD');
  clock.advance(9_999); // 9,999 ms since the last valid price
  health.bad('USD_HKD');
  expect(events).toEqual([]);
  clock.advance(1);
  // Quiet for failAfterMs, but no answer has failed since: a read may be in flight.
  expect(events).toEqual([]);
  health.bad('USD_HKD');
  expect(events).toEqual(['withdraw USD_HKD']);
  expect(health.withdrawnPairs()).toEqual(['USD_HKD']);
});

test('a pull upstream’s read still in flight at the deadline is no failure: its valid answer keeps the pair', () => {
  const { clock, events, health } = setup();
  health.streaming('USD_HKD');
  clock.advance(10_000); // the interval is longer than failAfterMs: no read answered yet
  clock.advance(1_500);
  health.good('USD_HKD');
  clock.advance(9_000);
  health.bad('USD_HKD');
  expect(events).toEqual([]);
  expect(health.isWithdrawn('USD_HKD')).toBe(false);
});

test('a push upstream’s pair is withdrawn by time alone (a silent feed gives no answer), its clock held while its subscription waits', () => {
  let waiting = true;
  const { clock, events, health } = setup(1_000, false, () => waiting);
  health.streaming('USD_HKD');
  clock.advance(5_000);
  expect(events).toEqual([]);
  waiting = false;
  clock.advance(999);
  expect(events).toEqual([]);
  clock.advance(1_001);
  expect(events).toEqual(['withdraw USD_HKD']);
});

test('a pair that stopped streaming is not watched, and a stopped withdrawn pair stays withdrawn', () => {
  const { clock, events, health } = setup();
  health.streaming('USD_HKD');
  health.stopped('USD_HKD');
  clock.advance(60_000);
  health.bad('USD_HKD');
  expect(events).toEqual([]);
  health.streaming('EUR_USD');
  clock.advance(10_000);
  health.bad('EUR_USD');
  health.stopped('EUR_USD');
  expect(health.isWithdrawn('EUR_USD')).toBe(true);
});

test('a withdrawn pair is probed at a low rate and returns after RESTORE_STREAK valid answers past the hold-down', () => {
  const { clock, events, probes, health } = setup(10_000);
  health.streaming('USD_HKD');
  clock.advance(10_000);
  health.bad('USD_HKD');
  expect(probeIntervalMs(10_000)).toBe(5_000);
  clock.advance(5_000);
  expect(probes).toEqual(['USD_HKD']);
  // Valid answers before the hold-down (10 s) has passed do not bring it back yet.
  for (let i = 0; i < RESTORE_STREAK; i++) health.good('USD_HKD');
  expect(events).toEqual(['withdraw USD_HKD']);
  clock.advance(5_000);
  health.good('USD_HKD');
  expect(events).toEqual(['withdraw USD_HKD', 'restore USD_HKD']);
  const probed = probes.length;
  clock.advance(60_000);
  expect(probes.length).toBe(probed); // no probing once restored
});

test('an upstream alternating between good and bad answers never brings the pair back', () => {
  const { clock, events, health } = setup(1_000);
  health.streaming('USD_HKD');
  clock.advance(1_000);
  health.bad('USD_HKD');
  for (let i = 0; i < 200; i++) {
    clock.advance(500);
    if (i % 3 === 2) health.bad('USD_HKD');
    else health.good('USD_HKD');
  }
  expect(events).toEqual(['withdraw USD_HKD']);
});

test('each withdrawal within the flap window doubles the hold-down, up to the cap', () => {
  const { clock, events, health } = setup(1_000);
  const holds: number[] = [];
  for (let round = 0; round < 12; round++) {
    health.streaming('USD_HKD');
    clock.advance(1_000);
    health.bad('USD_HKD'); // withdrawn
    let waited = 0;
    while (health.isWithdrawn('USD_HKD') && waited < 10 * MAX_HOLD_MS) {
      clock.advance(100);
      waited += 100;
      health.good('USD_HKD');
    }
    holds.push(waited);
  }
  expect(events.filter((e) => e.startsWith('restore'))).toHaveLength(12);
  expect(holds.slice(0, 4)).toEqual([1_000, 2_000, 4_000, 8_000]);
  expect(Math.max(...holds)).toBe(MAX_HOLD_MS);
});

test('push upstreams are not probed; close clears every timer', () => {
  const { clock, probes, health } = setup(1_000, false);
  health.streaming('USD_HKD');
  health.streaming('EUR_USD');
  clock.advance(30_000);
  expect(probes).toEqual([]);
  health.close();
  expect(clock.pending()).toBe(0);
});
