import { backoffDelayMs, backoffStepMs } from './backoff';
import { seededRandom } from './scheduler';

const policy = { initialMs: 100, maxMs: 2000 };
const always = (v: number) => () => v;

describe('backoffDelayMs', () => {
  test('attempt 0 waits between half the initial delay and the initial delay', () => {
    expect(backoffDelayMs(0, policy, always(0))).toBe(50);
    expect(backoffDelayMs(0, policy, always(0.5))).toBe(75);
    expect(backoffDelayMs(0, policy, always(0.999999))).toBe(100);
  });

  test.each([
    [0, 100],
    [1, 200],
    [2, 400],
    [3, 800],
    [4, 1600],
    [5, 2000],
    [6, 2000],
    [50, 2000],
  ])('attempt %p has a step of %p ms: the delay lies in [step/2, step]', (attempt, step) => {
    expect(backoffDelayMs(attempt, policy, always(0))).toBe(step / 2);
    expect(backoffDelayMs(attempt, policy, always(0.9999999))).toBe(step);
  });

  test('over many seeded draws no delay is below half the step or above the cap', () => {
    const random = seededRandom(2024);
    for (let attempt = 0; attempt < 40; attempt++) {
      const step = Math.min(policy.maxMs, policy.initialMs * 2 ** attempt);
      for (let i = 0; i < 200; i++) {
        const d = backoffDelayMs(attempt, policy, random);
        expect(d).toBeGreaterThanOrEqual(step / 2);
        expect(d).toBeLessThanOrEqual(step);
        expect(d).toBeLessThanOrEqual(policy.maxMs);
      }
    }
  });

  test('the delay grows with the attempt for the same random draw until it reaches the cap', () => {
    for (const v of [0, 0.3, 0.9]) {
      const delays = Array.from({ length: 8 }, (_, a) => backoffDelayMs(a, policy, always(v)));
      for (let i = 1; i < delays.length; i++)
        expect(delays[i]!).toBeGreaterThanOrEqual(delays[i - 1]!);
      expect(delays[1]!).toBeGreaterThan(delays[0]!);
      expect(delays[7]).toBe(backoffDelayMs(100, policy, always(v)));
    }
  });

  test('jitter spreads the delays of one attempt across its range', () => {
    const random = seededRandom(7);
    const seen = new Set(Array.from({ length: 100 }, () => backoffDelayMs(6, policy, random)));
    expect(seen.size).toBeGreaterThan(50);
    expect(Math.min(...seen)).toBeLessThan(1100);
    expect(Math.max(...seen)).toBeGreaterThan(1900);
  });

  test('a huge attempt number stays finite and capped', () => {
    const d = backoffDelayMs(Number.MAX_SAFE_INTEGER, policy, always(0.5));
    expect(Number.isFinite(d)).toBe(true);
    expect(d).toBe(1500);
  });

  test('when the initial delay equals the cap every attempt uses the cap as its step', () => {
    const flat = { initialMs: 500, maxMs: 500 };
    for (const a of [0, 1, 10]) {
      expect(backoffDelayMs(a, flat, always(0))).toBe(250);
      expect(backoffDelayMs(a, flat, always(0.9999999))).toBe(500);
    }
  });

  test('delays are whole milliseconds', () => {
    const random = seededRandom(3);
    for (let a = 0; a < 10; a++)
      expect(Number.isInteger(backoffDelayMs(a, { initialMs: 3, maxMs: 1000 }, random))).toBe(true);
  });
});

describe('backoffStepMs', () => {
  test('doubles from the initial delay up to the cap, without jitter', () => {
    const steps = [0, 1, 2, 3, 4, 40].map((a) => backoffStepMs(a, { initialMs: 100, maxMs: 500 }));
    expect(steps).toEqual([100, 200, 400, 500, 500, 500]);
  });
});
