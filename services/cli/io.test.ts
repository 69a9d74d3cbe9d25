import { json, table } from './io';

describe('table', () => {
  test('pads every column but the last to its widest cell, separated by two spaces', () => {
    const out = table(
      ['UUID', 'NAME', 'PAIRS'],
      [
        ['a', 'node-long-name', 'USD_HKD,BTC_USD'],
        ['bbbbbb', 'n', 'EUR_USD'],
      ],
    );
    expect(out).toBe(
      [
        'UUID    NAME            PAIRS',
        'a       node-long-name  USD_HKD,BTC_USD',
        'bbbbbb  n               EUR_USD',
        '',
      ].join('\n'),
    );
  });

  test('columns start at the same offset on every line', () => {
    const out = table(
      ['PAIR', 'PRICE', 'NODE'],
      [
        ['USD_HKD', '7.8', 'x'],
        ['BTC_USD', '65000.123456', 'yyyy'],
      ],
    );
    const lines = out.trimEnd().split('\n');
    const offsets = lines.map((l) => [
      l.indexOf(l.split(/\s{2,}/)[1]!),
      l.lastIndexOf(l.split(/\s{2,}/)[2]!),
    ]);
    expect(new Set(offsets.map((o) => o[0])).size).toBe(1);
    expect(new Set(offsets.map((o) => o[1])).size).toBe(1);
  });

  test('a header wider than its cells sets the width', () => {
    expect(table(['LONG HEADER', 'X'], [['a', 'b']])).toBe('LONG HEADER  X\na            b\n');
  });

  test('no line ends with trailing spaces, even when the last cells are empty', () => {
    const out = table(
      ['A', 'B'],
      [
        ['x', ''],
        ['', ''],
      ],
    );
    for (const line of out.split('\n')) expect(line).toBe(line.trimEnd());
    expect(out).toBe('A  B\nx\n\n');
  });

  test('missing cells in a short row are treated as empty', () => {
    expect(table(['A', 'B', 'C'], [['only']])).toBe('A     B  C\nonly\n');
  });

  test('with no rows only the header line is printed', () => {
    expect(table(['PAIR', 'NODES'], [])).toBe('PAIR  NODES\n');
  });
});

describe('json', () => {
  test('prints one indented JSON document ending in a newline', () => {
    const out = json([{ a: 1 }]);
    expect(out.endsWith('\n')).toBe(true);
    expect(JSON.parse(out)).toEqual([{ a: 1 }]);
    expect(out).toContain('\n  {');
  });
});
