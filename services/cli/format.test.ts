import { age, isoOrNull, safeToJson, showPrice, showTime, shown, shownLines } from './format';

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

describe('shown (human output of strings from the wire)', () => {
  test.each([
    ['plain', 'edge-1 Zürich 東京', 'edge-1 Zürich 東京'],
    ['ESC and BEL', 'a\x1b]0;t\x07b', 'a\\x1b]0;t\\x07b'],
    ['tab, newline, CR', 'a\tb\nc\rd', 'a\\tb\\nc\\rd'],
    ['NUL, DEL and C1', '\u0000\u007f\u009b', '\\x00\\x7f\\x9b'],
  ])('%s', (_what, input, output) => expect(shown(input)).toBe(output));

  test('shownLines keeps the line ends and escapes the rest', () => {
    expect(shownLines('one\x1b[2J\ntwo\n')).toBe('one\\x1b[2J\ntwo\n');
  });
});
