import { fakeScheduler } from '../../../tests/support/fake-scheduler';
import { MAX_PAUSE_MS, ReadLimiter, retryAfterMs, seconds } from './http-rate-limit';

test('Retry-After: delta seconds or an HTTP date, else undefined', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  expect(retryAfterMs('2', now)).toBe(2000);
  expect(retryAfterMs([' 30 ', '1'], now)).toBe(30_000);
  expect(retryAfterMs('Mon, 07 Dec 2026 12:00:05 GMT', now)).toBe(5000);
  expect(retryAfterMs('Mon, 07 Dec 2026 11:00:00 GMT', now)).toBe(0);
  expect(retryAfterMs(undefined, now)).toBeUndefined();
  expect(retryAfterMs('', now)).toBeUndefined();
  expect(retryAfterMs('soon', now)).toBeUndefined();
});

test('seconds round up to a tenth', () => {
  expect(seconds(1)).toBe('0.1');
  expect(seconds(2000)).toBe('2.0');
  expect(seconds(2001)).toBe('2.1');
});

function setup(maxRps = 2) {
  const clock = fakeScheduler();
  const log: string[] = [];
  const limiter = new ReadLimiter({
    scheduler: clock,
    maxRps,
    start: (pair) => log.push(`start ${pair}`),
    refuse: (pair, detail) => log.push(`refuse ${pair}: ${detail}`),
  });
  return { clock, log, limiter };
}

describe('ReadLimiter', () => {
  test('a burst goes at once; the rest wait in order, one read per pair', () => {
    const { clock, log, limiter } = setup(2);
    for (const p of ['A', 'B', 'C', 'D', 'C']) limiter.read(p);
    expect(log).toEqual(['start A', 'start B']);
    clock.advance(500);
    expect(log).toEqual(['start A', 'start B', 'start C']);
    clock.advance(500);
    expect(log).toEqual(['start A', 'start B', 'start C', 'start D']);
    clock.advance(10_000);
    expect(log).toHaveLength(4);
    expect(clock.pending()).toBe(0);
  });

  test('a dropped read never starts', () => {
    const { clock, log, limiter } = setup(1);
    limiter.read('A');
    limiter.read('B');
    limiter.drop('B');
    clock.advance(5000);
    expect(log).toEqual(['start A']);
  });

  test('Retry-After pauses every read, queued ones too, at most MAX_PAUSE_MS', () => {
    const { clock, log, limiter } = setup(1);
    limiter.read('A');
    limiter.read('B');
    expect(limiter.retryAfter(429, '2')).toBe('; requests paused for 2.0 s (Retry-After)');
    clock.advance(1000);
    limiter.read('C');
    expect(log).toEqual([
      'start A',
      'refuse B: the upstream answered 429 with Retry-After; requests are paused for another 1.0 s',
      'refuse C: the upstream answered 429 with Retry-After; requests are paused for another 1.0 s',
    ]);
    clock.advance(1000);
    limiter.read('D');
    expect(log.at(-1)).toBe('start D');

    expect(limiter.retryAfter(503, String(3600))).toBe(
      `; requests paused for ${seconds(MAX_PAUSE_MS)} s (Retry-After)`,
    );
    // A shorter pause does not cut a longer one short.
    expect(limiter.retryAfter(418, '1')).toBe('; requests paused for 1.0 s (Retry-After)');
    clock.advance(MAX_PAUSE_MS - 1);
    limiter.read('E');
    expect(log.at(-1)).toBe(
      'refuse E: the upstream answered 503 with Retry-After; requests are paused for another 0.1 s',
    );
    clock.advance(1);
    limiter.read('E');
    expect(log.at(-1)).toBe('start E');
  });

  test('no Retry-After, or one already past: no pause', () => {
    const { log, limiter } = setup(5);
    expect(limiter.retryAfter(429, undefined)).toBe('');
    expect(limiter.retryAfter(429, '0')).toBe('');
    limiter.read('A');
    expect(log).toEqual(['start A']);
  });

  test('close drops what waits and its timer; later reads do nothing', () => {
    const { clock, log, limiter } = setup(1);
    limiter.read('A');
    limiter.read('B');
    limiter.close();
    limiter.read('C');
    clock.advance(5000);
    expect(log).toEqual(['start A']);
    expect(clock.pending()).toBe(0);
  });
});
