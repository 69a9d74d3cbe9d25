/**
 * desiredStateOf (desired-state.ts): what a node is told is a pure function of the
 * assignment and the latest prices: every pair it announced, started with the newest
 * price held, or stopped.
 */
import { CurrencyStreamStateV1_StreamState as StreamState } from '../../../gen/protobuf/currency_nodes';
import { seededRandom } from '../../../shared/scheduler';
import { timestampFromMs } from '../../../shared/time';
import { Assignment } from './assignment';
import { desiredStateOf } from './desired-state';
import { PriceStore } from './prices';

const A = 'node-a';
const B = 'node-b';

describe('what a node is told', () => {
  test('lists every pair the node announced, in order: started where it streams, stopped elsewhere', () => {
    const assignment = new Assignment(1, seededRandom(1));
    assignment.addNode(A, ['EUR_USD', 'BTC_USD']);
    assignment.addNode(B, ['BTC_USD', 'USD_JPY']);
    const prices = new PriceStore();
    const a = desiredStateOf(assignment, prices, A);
    const b = desiredStateOf(assignment, prices, B);
    expect(a.map((s) => s.currencyPair)).toEqual(['BTC_USD', 'EUR_USD']);
    expect(b.map((s) => s.currencyPair)).toEqual(['BTC_USD', 'USD_JPY']);
    // BTC_USD has exactly one streamer: started on one node, stopped on the other.
    const btc = [a[0]!, b[0]!].map((s) => s.streamState).sort();
    expect(btc).toEqual([StreamState.StreamStart, StreamState.StreamStop].sort());
    expect(a[1]).toMatchObject({ currencyPair: 'EUR_USD', streamState: StreamState.StreamStart });
    expect(b[1]).toMatchObject({ currencyPair: 'USD_JPY', streamState: StreamState.StreamStart });
  });

  test('a started pair carries the newest price the controller holds and its time, so the streamer continues from it', () => {
    const assignment = new Assignment(1, seededRandom(1));
    assignment.addNode(A, ['BTC_USD']);
    const prices = new PriceStore();
    prices.offer({ pair: 'BTC_USD', price: 65000.25, updatedAtMs: 1_700_000_000_123, nodeUuid: B });
    expect(desiredStateOf(assignment, prices, A)).toEqual([
      {
        currencyPair: 'BTC_USD',
        streamState: StreamState.StreamStart,
        latestPrice: 65000.25,
        latestPriceUpdatedAt: timestampFromMs(1_700_000_000_123),
      },
    ]);
  });

  test('a started pair with no price held yet carries none', () => {
    const assignment = new Assignment(1, seededRandom(1));
    assignment.addNode(A, ['BTC_USD']);
    const [s] = desiredStateOf(assignment, new PriceStore(), A);
    expect(s).toEqual({
      currencyPair: 'BTC_USD',
      streamState: StreamState.StreamStart,
      latestPrice: undefined,
      latestPriceUpdatedAt: undefined,
    });
  });

  test('a stopped pair carries no price, even when one is held', () => {
    const assignment = new Assignment(1, seededRandom(1));
    assignment.addNode(A, ['BTC_USD']);
    assignment.addNode(B, ['BTC_USD']);
    const prices = new PriceStore();
    prices.offer({ pair: 'BTC_USD', price: 1, updatedAtMs: 1, nodeUuid: A });
    const stopped = [A, B]
      .flatMap((u) => desiredStateOf(assignment, prices, u))
      .filter((s) => s.streamState === StreamState.StreamStop);
    expect(stopped).toEqual([{ currencyPair: 'BTC_USD', streamState: StreamState.StreamStop }]);
  });

  test('a node that announced nothing, or is not connected, is told nothing', () => {
    const assignment = new Assignment(1, seededRandom(1));
    assignment.addNode(A, []);
    expect(desiredStateOf(assignment, new PriceStore(), A)).toEqual([]);
    expect(desiredStateOf(assignment, new PriceStore(), 'unknown')).toEqual([]);
  });
});
