/**
 * One table: why the controller ended a stream -> the gRPC status the peer sees, the
 * `reason` label of the disconnect metric, and the `reason` of the refusal counter when it
 * was a refusal. Every place that ends a stream names a reason from here and nothing else.
 */
import { status } from '@grpc/grpc-js';

import type { CloseReason } from '../../../shared/protocol';

export type { CloseReason };

export type DisconnectLabel = 'closed' | 'lost' | 'kicked' | 'replaced' | 'shutdown' | 'rejected';

interface CloseRule {
  /** The status sent to the peer; OK ends the stream cleanly. */
  code: status;
  disconnect: DisconnectLabel;
  /** Counted in currency_controller_rejected_total{reason} as well. */
  refusal?: boolean;
  /**
   * The controller ends every node stream with it at once (it stops, or stops leading): a
   * node that goes so moves no pair to the others, which are all going too.
   */
  endsEveryStream?: boolean;
}

export const CLOSE_RULES: Readonly<Record<CloseReason, CloseRule>> = {
  closed: { code: status.OK, disconnect: 'closed' },
  lost: { code: status.UNAVAILABLE, disconnect: 'lost' },
  kicked: { code: status.UNAVAILABLE, disconnect: 'kicked' },
  replaced: { code: status.ABORTED, disconnect: 'replaced' },
  shutdown: { code: status.OK, disconnect: 'shutdown', endsEveryStream: true },
  slow_consumer: { code: status.RESOURCE_EXHAUSTED, disconnect: 'lost', refusal: true },
  register_timeout: { code: status.DEADLINE_EXCEEDED, disconnect: 'rejected', refusal: true },
  max_nodes: { code: status.RESOURCE_EXHAUSTED, disconnect: 'rejected', refusal: true },
  max_pairs: { code: status.RESOURCE_EXHAUSTED, disconnect: 'rejected', refusal: true },
  max_clis: { code: status.RESOURCE_EXHAUSTED, disconnect: 'rejected', refusal: true },
  uuid_not_allowed: { code: status.PERMISSION_DENIED, disconnect: 'rejected' },
  not_leader: { code: status.UNAVAILABLE, disconnect: 'shutdown', endsEveryStream: true },
};

export const DISCONNECT_LABELS: readonly DisconnectLabel[] = [
  'closed',
  'lost',
  'kicked',
  'replaced',
  'shutdown',
  'rejected',
];

export const REFUSAL_LABELS: readonly CloseReason[] = (
  Object.keys(CLOSE_RULES) as CloseReason[]
).filter((r) => CLOSE_RULES[r].refusal);
