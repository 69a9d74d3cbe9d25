/**
 * The per-pair slots (pair-slots.ts) shared by the assignment, the price store, upkeep and
 * the update count: the assignment keeps each slot's streamers and primary in step with
 * its own state, so the price intake's one lookup and comparison give the same answer as
 * the node's streaming set; the store and upkeep write the same records in place.
 */
import { seededRandom } from '../../../shared/scheduler';
import { fakeScheduler } from '../../../../tests/support/fake-scheduler';
import { Assignment } from './assignment';
import { PairSlots } from './pair-slots';
import { PriceStore } from './prices';
import { Upkeep } from './upkeep';

const A = 'node-a';
const B = 'node-b';
const C = 'node-c';

describe('PairSlots', () => {
  test('of() creates a slot once; get() never creates; delete() forgets it', () => {
    const slots = new PairSlots();
    expect(slots.get('BTC_USD')).toBeUndefined();
    const s = slots.of('BTC_USD');
    expect(slots.of('BTC_USD')).toBe(s);
    expect(slots.get('BTC_USD')).toBe(s);
    expect(s.pair).toBe('BTC_USD');
    slots.delete('BTC_USD');
    expect(slots.get('BTC_USD')).toBeUndefined();
    expect([...slots.values()]).toEqual([]);
  });
});

describe("the assignment's slots", () => {
  /** Whether each node streams each pair, by the node's own set and by the slot. */
  function agree(a: Assignment, nodes: string[], pairs: string[]): void {
    for (const uuid of nodes)
      for (const pair of pairs) {
        const bySet = a.streamingPairsOf(uuid).includes(pair);
        expect([uuid, pair, a.slots.get(pair)?.streams(uuid) ?? false]).toEqual([
          uuid,
          pair,
          bySet,
        ]);
        expect(a.isStreaming(uuid, pair)).toBe(bySet);
      }
    for (const pair of pairs) {
      expect(a.slots.get(pair)?.primary).toBe(a.streamersOf(pair)[0]);
    }
  }

  test.each([1, 2])(
    'with %i stream(s) per pair, slots follow arrivals, moves, withdrawals, demotions and departures',
    (perPair) => {
      const a = new Assignment(perPair, seededRandom(5));
      const nodes = [A, B, C];
      const pairs = ['BTC_USD', 'ETH_USD', 'USD_HKD', 'EUR_USD'];
      a.addNode(A, pairs);
      agree(a, nodes, pairs);
      a.addNode(B, pairs.slice(0, 3));
      agree(a, nodes, pairs);
      a.addNode(C, pairs.slice(1));
      agree(a, nodes, pairs);
      a.updatePairs(A, ['BTC_USD'], 'withdrawn');
      agree(a, nodes, pairs);
      const streamer = a.streamersOf('ETH_USD')[0]!;
      a.demote(streamer, 'ETH_USD');
      agree(a, nodes, pairs);
      a.removeNode(B, 'node_left');
      agree(a, nodes, pairs);
      a.removeNode(C, 'kicked');
      agree(a, nodes, pairs);
    },
  );

  test('a forgotten pair loses its slot, with its latest price, progress and pending count', () => {
    const a = new Assignment(1, seededRandom(1));
    const prices = new PriceStore(a.slots);
    a.addNode(A, ['BTC_USD']);
    prices.offer({ pair: 'BTC_USD', price: 7, updatedAtMs: 1, nodeUuid: A });
    a.slots.get('BTC_USD')!.updates = 3;
    a.removeNode(A, 'node_left');
    expect(a.forgetPair('BTC_USD')).toBe(true);
    expect(a.slots.get('BTC_USD')).toBeUndefined();
    expect(prices.get('BTC_USD')).toBeUndefined();
    expect(prices.all()).toEqual([]);
  });

  test("the price store and upkeep write the slot's records in place", () => {
    const scheduler = fakeScheduler();
    const a = new Assignment(1, seededRandom(1));
    const prices = new PriceStore(a.slots);
    const upkeep = new Upkeep(
      scheduler,
      a,
      { staleStreamMs: 10_000, forgetPairAfterMs: 60_000 },
      { quiet: () => false, forget: () => {} },
    );
    a.addNode(A, ['BTC_USD']);
    const slot = a.slots.get('BTC_USD')!;
    expect(prices.offerIn(slot, 7, 10, A)).toBe(true);
    const record = slot.latest;
    expect(prices.offerIn(slot, 8, 11, A)).toBe(true);
    expect(prices.offerIn(slot, 9, 11, A)).toBe(false);
    expect(slot.latest).toBe(record);
    expect(prices.get('BTC_USD')).toEqual({
      pair: 'BTC_USD',
      price: 8,
      updatedAtMs: 11,
      nodeUuid: A,
    });
    upkeep.markIn(slot, A, 100);
    const progress = slot.progress.get(A);
    upkeep.markIn(slot, A, 200);
    expect(slot.progress.get(A)).toBe(progress);
    expect(progress).toEqual({ uuid: A, at: 200 });
    upkeep.stop();
  });
});
