import { missing } from './ready';

const want = {
  names: ['asia-1', 'asia-2', 'europe-1', 'europe-2'],
  pairs: ['USD_HKD', 'EUR_USD'],
};
const streamed = [
  { currencyPair: 'USD_HKD', nodeUuids: ['a'] },
  { currencyPair: 'EUR_USD', nodeUuids: ['b'] },
];

describe('the demo waits for the whole system', () => {
  test('every pair streamed by three of four nodes is not up: the fourth is named', () => {
    // What a CI run showed: "3 node(s) connected" printed where the demo started four.
    const nodes = [{ name: 'asia-1' }, { name: 'asia-2' }, { name: 'europe-1' }];
    expect(missing(want, nodes, streamed)).toBe('node(s) not connected yet: europe-2');
  });

  test('every node connected but a pair with no streamer (or two) is not up', () => {
    const nodes = want.names.map((name) => ({ name }));
    expect(missing(want, nodes, [streamed[0]!])).toBe('pair(s) not streamed yet: EUR_USD');
    expect(
      missing(want, nodes, [streamed[0]!, { currencyPair: 'EUR_USD', nodeUuids: ['b', 'c'] }]),
    ).toBe('pair(s) not streamed yet: EUR_USD');
  });

  test('every node connected and every pair streamed once is up', () => {
    const nodes = [...want.names, 'someone-else'].map((name) => ({ name }));
    expect(missing(want, nodes, streamed)).toBeUndefined();
  });
});
