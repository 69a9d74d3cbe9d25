import {
  AVOID_MS,
  ControllerChoice,
  ELECTION_RETRY_MS,
  ELECTION_WINDOW_MS,
  HANDOVER_RETRY_MS,
  HANDOVER_WINDOW_MS,
} from './controller-choice';

const ADDRS = ['a:1', 'b:1', 'c:1'];

describe('ControllerChoice', () => {
  test('after a standby refusal, the next address in the list at once, until all refused in a row', () => {
    const c = new ControllerChoice(ADDRS, () => 0); // random picks the first
    expect(c.next(0)).toBe('a:1');
    c.ended('a:1', 'standby', 0);
    expect(c.nextAtOnce()).toBe(true);
    expect(c.next(0)).toBe('b:1');
    c.ended('b:1', 'standby', 0);
    expect(c.next(0)).toBe('c:1');
    c.ended('c:1', 'standby', 0);
    expect(c.nextAtOnce()).toBe(false); // every address refused: back off
  });

  test('an unreachable address is avoided for AVOID_MS while another is left; all avoided: any', () => {
    const c = new ControllerChoice(['a:1', 'b:1'], () => 0);
    c.ended('a:1', 'unreachable', 0);
    expect(c.next(1)).toBe('b:1');
    c.ended('b:1', 'unreachable', 1);
    expect(c.next(2)).toBe('a:1'); // both avoided: the random pick among all
    expect(c.next(AVOID_MS)).toBe('a:1'); // a's avoidance over
  });

  test("a shutdown clears the other avoided addresses; a standby's refusal clears its own", () => {
    const c = new ControllerChoice(['a:1', 'b:1'], () => 0);
    c.ended('b:1', 'unreachable', 0);
    c.ended('a:1', 'shutdown', 100);
    expect(c.next(200)).toBe('b:1');
    const d = new ControllerChoice(['a:1', 'b:1'], () => 0.99);
    d.ended('b:1', 'unreachable', 0);
    d.ended('b:1', 'standby', 10);
    d.ended('a:1', 'other', 20); // resets the refusals in a row: a random pick again
    expect(d.next(30)).toBe('b:1'); // not avoided any more
  });

  test('retries are capped during a handover, then during an election, then not', () => {
    const c = new ControllerChoice(ADDRS, () => 0);
    expect(c.retryCapMs(0)).toBeUndefined();
    c.ended('a:1', 'shutdown', 1000);
    expect(c.retryCapMs(1000 + HANDOVER_WINDOW_MS - 1)).toBe(HANDOVER_RETRY_MS);
    expect(c.retryCapMs(1000 + HANDOVER_WINDOW_MS)).toBe(ELECTION_RETRY_MS);
    expect(c.retryCapMs(1000 + ELECTION_WINDOW_MS)).toBeUndefined();
    c.ended('b:1', 'standby', 50_000);
    expect(c.retryCapMs(50_000 + ELECTION_WINDOW_MS - 1)).toBe(ELECTION_RETRY_MS);
  });
});
