/**
 * Upkeep (upkeep.ts) on the real assignment and the fake scheduler: streamers that went
 * quiet (CONTROLLER_STALE_STREAM_MS) and pairs no node can stream any more
 * (CONTROLLER_FORGET_PAIR_AFTER_MS) are found by a sweep and handed to the core.
 */
import { seededRandom } from '../../../shared/scheduler';
import { type FakeScheduler, fakeScheduler } from '../../../../tests/support/fake-scheduler';
import { Assignment } from './assignment';
import { Upkeep } from './upkeep';

const A = 'node-a';
const B = 'node-b';

function setup(
  limits: { staleStreamMs: number; forgetPairAfterMs: number } = {
    staleStreamMs: 10_000,
    forgetPairAfterMs: 60_000,
  },
  quietAnswer: (uuid: string, pair: string) => boolean = () => false,
) {
  const scheduler: FakeScheduler = fakeScheduler();
  const assignment = new Assignment(1, seededRandom(3));
  const quiet: { uuid: string; pair: string; quietMs: number; at: number }[] = [];
  const forgotten: { pair: string; idleMs: number; at: number }[] = [];
  const start = scheduler.now();
  const upkeep = new Upkeep(scheduler, assignment, limits, {
    quiet: (uuid, pair, quietMs) => {
      quiet.push({ uuid, pair, quietMs, at: scheduler.now() - start });
      return quietAnswer(uuid, pair);
    },
    // As the core does: the pair is dropped from the assignment too.
    forget: (pair, idleMs) => {
      forgotten.push({ pair, idleMs, at: scheduler.now() - start });
      assignment.forgetPair(pair);
    },
  });
  return { scheduler, assignment, upkeep, quiet, forgotten, start };
}

describe('the sweep', () => {
  test('runs every second, or more often when a limit is short (a quarter of it)', () => {
    const slow = setup();
    expect(slow.scheduler.pending()).toBe(1);
    slow.assignment.addNode(A, ['BTC_USD']);
    slow.upkeep.mark(A, 'BTC_USD');
    slow.scheduler.advance(10_000);
    // Found at the first sweep at or after 10 s.
    expect(slow.quiet.map((q) => q.at)).toEqual([10_000]);

    const fast = setup({ staleStreamMs: 400, forgetPairAfterMs: 60_000 });
    fast.assignment.addNode(A, ['BTC_USD']);
    fast.upkeep.mark(A, 'BTC_USD');
    fast.scheduler.advance(400);
    expect(fast.quiet.map((q) => q.at)).toEqual([400]);
  });

  test('stop() ends the sweeps', () => {
    const { scheduler, assignment, upkeep, quiet } = setup();
    assignment.addNode(A, ['BTC_USD']);
    upkeep.mark(A, 'BTC_USD');
    upkeep.stop();
    expect(scheduler.pending()).toBe(0);
    scheduler.advance(60_000);
    expect(quiet).toEqual([]);
  });
});

describe('quiet streamers', () => {
  test('a streamer that sent nothing for the stale limit is handed over with how long it was quiet', () => {
    const { scheduler, assignment, upkeep, quiet, start } = setup();
    assignment.addNode(A, ['BTC_USD']);
    upkeep.mark(A, 'BTC_USD', start);
    scheduler.advance(9_999);
    expect(quiet).toEqual([]);
    scheduler.advance(1);
    expect(quiet).toEqual([{ uuid: A, pair: 'BTC_USD', quietMs: 10_000, at: 10_000 }]);
  });

  test('each valid price resets the clock', () => {
    const { scheduler, assignment, upkeep, quiet } = setup();
    assignment.addNode(A, ['BTC_USD']);
    upkeep.mark(A, 'BTC_USD');
    for (let i = 0; i < 5; i++) {
      scheduler.advance(9_000);
      upkeep.mark(A, 'BTC_USD');
    }
    expect(quiet).toEqual([]);
  });

  test('a quiet streamer that kept the pair (nowhere to move it) is reported again at each sweep', () => {
    const { scheduler, assignment, upkeep, quiet } = setup(undefined, () => false);
    assignment.addNode(A, ['BTC_USD']);
    upkeep.mark(A, 'BTC_USD');
    scheduler.advance(12_000);
    expect(quiet.map((q) => q.quietMs)).toEqual([10_000, 11_000, 12_000]);
  });

  test('a quiet streamer whose pair moved away is forgotten: reported once', () => {
    const { scheduler, assignment, upkeep, quiet } = setup(undefined, () => true);
    assignment.addNode(A, ['BTC_USD']);
    upkeep.mark(A, 'BTC_USD');
    scheduler.advance(20_000);
    expect(quiet).toHaveLength(1);
    expect(upkeep.isLive(A, 'BTC_USD')).toBe(false);
  });

  test('a node no longer streaming the pair is dropped by the sweep without being called quiet', () => {
    const { scheduler, assignment, upkeep, quiet } = setup();
    assignment.addNode(A, ['BTC_USD']);
    upkeep.mark(A, 'BTC_USD');
    assignment.removeNode(A, 'node_left');
    scheduler.advance(30_000);
    expect(quiet).toEqual([]);
  });

  test('unmark forgets a streamer at once, so a pair given back later starts afresh', () => {
    const { scheduler, assignment, upkeep, quiet } = setup();
    assignment.addNode(A, ['BTC_USD']);
    upkeep.mark(A, 'BTC_USD');
    scheduler.advance(8_000);
    upkeep.unmark(A, 'BTC_USD');
    expect(upkeep.isLive(A, 'BTC_USD')).toBe(false);
    upkeep.markIfNew(A, 'BTC_USD'); // given the pair again
    scheduler.advance(8_000);
    expect(quiet).toEqual([]);
    expect(upkeep.isLive(A, 'BTC_USD')).toBe(true);
  });

  test('markIfNew does not refresh a streamer already watched (a repeated start is no progress)', () => {
    const { scheduler, assignment, upkeep, quiet } = setup();
    assignment.addNode(A, ['BTC_USD']);
    upkeep.mark(A, 'BTC_USD');
    scheduler.advance(6_000);
    upkeep.markIfNew(A, 'BTC_USD');
    scheduler.advance(4_000);
    expect(quiet.map((q) => q.quietMs)).toEqual([10_000]);
  });

  test('markIn (the hot path): two streamers of one pair marked in turn each keep their own progress', () => {
    const scheduler = fakeScheduler();
    const start = scheduler.now();
    const two = new Assignment(2, seededRandom(3));
    const quiet: [string, number][] = [];
    const upkeep = new Upkeep(
      scheduler,
      two,
      { staleStreamMs: 10_000, forgetPairAfterMs: 60_000 },
      {
        // Kept: nowhere to move the pair.
        quiet: (uuid, _pair, quietMs) => {
          quiet.push([uuid, quietMs]);
          return false;
        },
        forget: () => {},
      },
    );
    two.addNode(A, ['BTC_USD']);
    two.addNode(B, ['BTC_USD']);
    const slot = two.slots.get('BTC_USD')!;
    upkeep.markIn(slot, A, start);
    upkeep.markIn(slot, B, start);
    scheduler.advance(6_000);
    upkeep.markIn(slot, B, scheduler.now()); // only B makes progress
    upkeep.markIn(slot, B, scheduler.now());
    scheduler.advance(4_000);
    expect(quiet).toEqual([[A, 10_000]]);
    expect(upkeep.isLive(B, 'BTC_USD')).toBe(true);
    // Unmarked, then marked again: a fresh record, not the one the slot held last.
    upkeep.unmark(B, 'BTC_USD');
    expect(slot.lastProgress).toBeUndefined();
    expect(upkeep.isLive(B, 'BTC_USD')).toBe(false);
    upkeep.markIn(slot, B, scheduler.now());
    expect(upkeep.isLive(B, 'BTC_USD')).toBe(true);
    expect(slot.progress.get(B)).toBe(slot.lastProgress);
    upkeep.stop();
  });

  test('isLive: true while the last price is younger than the stale limit, false from the limit on', () => {
    const { scheduler, assignment, upkeep, start } = setup();
    assignment.addNode(A, ['BTC_USD']);
    expect(upkeep.isLive(A, 'BTC_USD')).toBe(false);
    upkeep.mark(A, 'BTC_USD', start);
    expect(upkeep.isLive(A, 'BTC_USD', start + 9_999)).toBe(true);
    expect(upkeep.isLive(A, 'BTC_USD', start + 10_000)).toBe(false);
    scheduler.advance(5_000);
    expect(upkeep.isLive(A, 'BTC_USD')).toBe(true);
    expect(upkeep.isLive(B, 'BTC_USD')).toBe(false);
  });
});

describe('orphaned pairs', () => {
  test('a known pair that no connected node can stream is forgotten after the limit, from when it was first seen orphaned', () => {
    const { scheduler, assignment, forgotten } = setup();
    assignment.addNode(A, ['BTC_USD']);
    assignment.removeNode(A, 'node_left');
    scheduler.advance(60_000); // first seen orphaned at the 1 s sweep
    expect(forgotten).toEqual([]);
    scheduler.advance(1_000);
    expect(forgotten).toEqual([{ pair: 'BTC_USD', idleMs: 60_000, at: 61_000 }]);
    expect(assignment.knownPairs()).toEqual([]);
    scheduler.advance(120_000);
    expect(forgotten).toHaveLength(1);
  });

  test('a capable node coming back resets the clock', () => {
    const { scheduler, assignment, forgotten } = setup();
    assignment.addNode(A, ['BTC_USD']);
    assignment.removeNode(A, 'node_left');
    scheduler.advance(50_000);
    assignment.addNode(B, ['BTC_USD']);
    scheduler.advance(1_000);
    assignment.removeNode(B, 'node_left');
    scheduler.advance(59_000);
    expect(forgotten).toEqual([]);
    scheduler.advance(2_000);
    expect(forgotten.map((f) => f.at)).toEqual([112_000]);
  });

  test('a pair with a capable node is never forgotten', () => {
    const { scheduler, assignment, forgotten } = setup();
    assignment.addNode(A, ['BTC_USD']);
    scheduler.advance(300_000);
    expect(forgotten).toEqual([]);
  });
});
