/**
 * Test ports (tests/support/ports.ts): each lane of scripts/test-all.sh picks in its own part
 * of 20000-29999 (TEST_PORT_BLOCK=i/n), so two lanes never hand the same port to the
 * programs they start (exemplars.test once failed with EADDRINUSE on a port another lane had
 * picked).
 */
import { freePort, portRange } from '../support/ports';

test('without a block: the whole range; with i/n: the i-th of n equal parts, apart from the others', () => {
  // Unset (an empty value; `undefined` would read this lane's own TEST_PORT_BLOCK).
  expect(portRange('')).toEqual({ first: 20_000, span: 10_000 });
  const parts = [0, 1, 2].map((i) => portRange(`${i}/3`));
  expect(parts).toEqual([
    { first: 20_000, span: 3333 },
    { first: 23_333, span: 3333 },
    { first: 26_666, span: 3333 },
  ]);
  for (let i = 1; i < parts.length; i++)
    expect(parts[i]!.first).toBeGreaterThanOrEqual(parts[i - 1]!.first + parts[i - 1]!.span);
  expect(portRange('1/2')).toEqual({ first: 25_000, span: 5000 });
});

test.each(['3/3', '1', 'a/b', '-1/2', '0/0'])('TEST_PORT_BLOCK=%s is refused, naming it', (bad) => {
  expect(() => portRange(bad)).toThrow(`TEST_PORT_BLOCK=${bad}`);
});

test('freePort picks in the block of its lane', async () => {
  const before = process.env.TEST_PORT_BLOCK;
  process.env.TEST_PORT_BLOCK = '2/3';
  try {
    for (let i = 0; i < 20; i++) {
      const port = await freePort();
      expect(port).toBeGreaterThanOrEqual(26_666);
      expect(port).toBeLessThan(29_999);
    }
  } finally {
    if (before === undefined) delete process.env.TEST_PORT_BLOCK;
    else process.env.TEST_PORT_BLOCK = before;
  }
});
