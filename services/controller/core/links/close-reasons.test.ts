/**
 * CLOSE_RULES (close-reasons.ts): why the controller ended a stream -> the status the
 * peer sees, the disconnect label and whether it counts as a refusal.
 */
import { status } from '@grpc/grpc-js';
import { CLOSE_RULES, type CloseReason, DISCONNECT_LABELS, REFUSAL_LABELS } from './close-reasons';

const reasons = Object.keys(CLOSE_RULES) as CloseReason[];

describe('close rules', () => {
  test('only a clean half-close and a shutdown end the stream with OK', () => {
    expect(reasons.filter((r) => CLOSE_RULES[r].code === status.OK).sort()).toEqual([
      'closed',
      'shutdown',
    ]);
  });

  test("every rule's disconnect label is one the metric declares", () => {
    for (const r of reasons) expect(DISCONNECT_LABELS).toContain(CLOSE_RULES[r].disconnect);
  });

  test('the refusal labels are exactly the rules marked as refusals', () => {
    expect([...REFUSAL_LABELS].sort()).toEqual(
      ['max_clis', 'max_nodes', 'max_pairs', 'register_timeout', 'slow_consumer'].sort(),
    );
  });

  test('a node that is replaced is told ABORTED (it must back off), a standby tells nodes UNAVAILABLE (try the leader)', () => {
    expect(CLOSE_RULES.replaced.code).toBe(status.ABORTED);
    expect(CLOSE_RULES.not_leader.code).toBe(status.UNAVAILABLE);
    expect(CLOSE_RULES.uuid_not_allowed.code).toBe(status.PERMISSION_DENIED);
    expect(CLOSE_RULES.register_timeout.code).toBe(status.DEADLINE_EXCEEDED);
  });

  test('a slow consumer counts as lost, the limits as rejected', () => {
    expect(CLOSE_RULES.slow_consumer.disconnect).toBe('lost');
    for (const r of ['max_nodes', 'max_pairs', 'max_clis', 'register_timeout'] as const)
      expect(CLOSE_RULES[r].disconnect).toBe('rejected');
  });
});
