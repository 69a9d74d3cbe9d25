/**
 * What one step of the assignment (assignment.ts) changed, as the core and the observer
 * read it: the nodes to send a full desired state, the streams that moved and why, and the
 * pairs whose primary streamer is another one.
 */
export type ReassignReason =
  'node_left' | 'kicked' | 'rebalanced' | 'pairs_changed' | 'withdrawn' | 'stale';

/**
 * Why a node's pair set changed: `withdrawn`, the node sent a new NodeKnownCurrenciesV1Notify
 * on its live stream (its upstream for a pair failed, or answers again); `pairs_changed`, a
 * newer stream of the same node replaced its old one with a different set.
 */
export type PairSetReason = 'withdrawn' | 'pairs_changed';

/** A pair gained a streamer (`to`), lost one (`from`), or both (a move). */
export interface Reassignment {
  pair: string;
  from?: string;
  to?: string;
  reason: ReassignReason;
}

/**
 * A pair's primary streamer changed: `from` was primary before the change, `to` is now;
 * `reason`, why `from` stopped being primary (absent for a pair's first primary).
 */
export interface PrimaryChange {
  from?: string;
  to?: string;
  reason?: ReassignReason;
}

export interface AssignmentChange {
  /** Nodes (still connected) whose streaming set changed: send each its full state. */
  changedNodes: Set<string>;
  /** Streams taken over because their node went away, or moved for balance. */
  reassignments: Reassignment[];
  /** Pairs whose primary streamer is another one (or none, or a first one) after the change. */
  primaryChanges: Map<string, PrimaryChange>;
}

export function emptyChange(): AssignmentChange {
  return { changedNodes: new Set(), reassignments: [], primaryChanges: new Map() };
}
