import { age, isoOrNull, safeToJson, showPrice, showTime } from './format';

const NOW = Date.UTC(2026, 0, 10, 12, 0, 0);
const ago = (ms: number) => {
  const t = NOW - ms;
  return { seconds: Math.floor(t / 1000), nanos: (t % 1000) * 1e6 };
};

describe('age', () => {
  test.each([
    [0, '0s'],
    [45_000, '45s'],
    [119_000, '119s'],
    [12 * 60_000, '12m'],
    [3 * 3_600_000, '3h'],
    [47 * 3_600_000, '47h'],
    [5 * 86_400_000, '5d'],
  ])('%p ms ago is %p', (ms, shown) => expect(age(ago(ms), NOW)).toBe(shown));

  test('a time ahead of the clock shows 0s, a malformed or absent one ?', () => {
    expect(age(ago(-60_000), NOW)).toBe('0s');
    expect(age({ seconds: 1e13, nanos: 0 }, NOW)).toBe('?');
    expect(age(undefined, NOW)).toBe('?');
  });
});

describe('wire values shown safely', () => {
  test('timestamps inside and outside the protobuf range', () => {
    expect(showTime({ seconds: -1, nanos: 0 })).toBe('1969-12-31T23:59:59.000Z');
    expect(isoOrNull({ seconds: 253_402_300_800, nanos: 0 })).toBeNull();
    expect(showTime({ seconds: 0, nanos: 1e9 })).toBe('invalid (seconds=0, nanos=1000000000)');
    expect(showTime(undefined)).toBe('');
  });

  test('prices that are not finite and positive', () => {
    expect(showPrice(7.8)).toBe('7.8');
    expect(showPrice(0)).toBe('invalid (0)');
    expect(showPrice(-Infinity)).toBe('invalid (-Infinity)');
  });

  test('safeToJson turns a malformed nested timestamp into null and keeps the rest', () => {
    const j = safeToJson({
      name: 'NodeShutdownV1Reply',
      message: { shutdownAt: { seconds: 1e13, nanos: 0 } },
    }) as Record<string, unknown>;
    expect(j).toEqual({ shutdownAt: null });
  });
});
