/** parseSeconds (flags.ts): the CLI's seconds flags, strict decimal, range-checked. */
import { MAX_SECONDS, UsageError, parseSeconds } from './flags';

describe('parseSeconds', () => {
  test.each([
    ['5', 5000],
    ['0.5', 500],
    ['2.25', 2250],
    ['0.001', 1],
    ['007', 7000],
    [String(MAX_SECONDS), MAX_SECONDS * 1000],
  ])('%p seconds is %p ms', (raw, ms) => {
    expect(parseSeconds('--timeout', raw)).toBe(ms);
  });

  test('fractions finer than a millisecond are rounded to the millisecond', () => {
    expect(parseSeconds('--interval', '1.0004')).toBe(1000);
    expect(parseSeconds('--interval', '1.0005')).toBe(1001);
  });

  test.each(['1e3', '0x10', '+5', '-5', '.5', '5.', '5s', ' 5', '', 'NaN', 'Infinity', '1_000'])(
    '%p is refused rather than guessed at, naming the flag and the value',
    (raw) => {
      expect(() => parseSeconds('--timeout', raw)).toThrow(UsageError);
      expect(() => parseSeconds('--timeout', raw)).toThrow(
        `--timeout: invalid value "${raw}": must be a number of seconds > 0 in decimal digits, e.g. 5 or 0.5`,
      );
    },
  );

  test.each(['0', '0.0', '0.0004'])('%p (under a millisecond) is refused as not > 0', (raw) => {
    expect(() => parseSeconds('--interval', raw)).toThrow(
      `--interval: invalid value "${raw}": must be a number of seconds > 0, at least 0.001`,
    );
  });

  test('more than a timer can wait is refused, naming the limit', () => {
    expect(() => parseSeconds('--timeout', String(MAX_SECONDS + 1))).toThrow(
      `must be at most ${MAX_SECONDS} seconds`,
    );
    expect(MAX_SECONDS).toBe(2147483);
  });
});
