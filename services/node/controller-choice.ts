/**
 * Which controller a node dials next, and how soon, when NODE_CONTROLLER_ADDR lists several
 * (leader election: one leads, the others refuse node streams as standbys). Pure: times
 * come in as arguments; the connection loop (connection.ts) reports how each stream ended.
 *
 * - After a standby's refusal, the next address in the list, at once, until every address
 *   refused in a row; otherwise one at random.
 * - An address that refused the connection, or ended our stream with `shutdown`, is avoided
 *   for a while if another is left. A standby's refusal proves its address reachable.
 *   A `shutdown` makes every other address usable again: the next leader may be a
 *   controller that restarted a moment ago.
 * - While an election is under way (a standby refused us lately) retries stay near the
 *   Lease's retry period instead of climbing to the backoff cap; right after a `shutdown`
 *   (a graceful leader stop: the Lease is released and a following standby takes it in
 *   about 0.1 s) they are shorter still.
 */
import type { Random } from '../shared/scheduler';

/** How a stream ended, as far as choosing the next controller goes. */
export type StreamEnd =
  /** Refused with `not_leader`: this controller is a standby. */
  | 'standby'
  /** Ended with the close reason `shutdown`: the controller is stopping. */
  | 'shutdown'
  /** Never got through (UNAVAILABLE before registering): the controller is not there. */
  | 'unreachable'
  | 'other';

/** An address that refused the connection or said `shutdown` is avoided this long. */
export const AVOID_MS = 5000;
/** After a standby's refusal, retries stay at most this far apart for ELECTION_WINDOW_MS. */
export const ELECTION_WINDOW_MS = 10_000;
export const ELECTION_RETRY_MS = 250;
/** After a `shutdown`, a standby's refusal is retried this soon, for HANDOVER_WINDOW_MS. */
export const HANDOVER_WINDOW_MS = 2000;
export const HANDOVER_RETRY_MS = 50;

export class ControllerChoice {
  /** Index of the address dialled last, and how many standbys in a row refused us. */
  private lastIndex = -1;
  private standbyRefusals = 0;
  /** When a standby last refused us: an election is under way or just happened. */
  private standbySeenAt?: number;
  /** When a controller last ended our stream with `shutdown` (a graceful stop). */
  private handoverAt?: number;
  /** Addresses to avoid, and until when. */
  private readonly avoidUntil = new Map<string, number>();

  constructor(
    private readonly addresses: readonly string[],
    private readonly random: Random,
  ) {}

  /** The address to dial now. */
  next(now: number): string {
    const n = this.addresses.length;
    const usable = (i: number) => (this.avoidUntil.get(this.addresses[i]!) ?? 0) <= now;
    let index: number;
    if (this.standbyRefusals > 0 && this.lastIndex >= 0) {
      index = (this.lastIndex + 1) % n;
      for (let k = 0; k < n && !usable(index); k++) index = (index + 1) % n;
    } else {
      const candidates = this.addresses.map((_, i) => i).filter(usable);
      const pool = candidates.length > 0 ? candidates : this.addresses.map((_, i) => i);
      index = pool[Math.floor(this.random() * pool.length)]!;
    }
    this.lastIndex = index;
    return this.addresses[index]!;
  }

  /** How the stream to `address` ended, at `now`. */
  ended(address: string, end: StreamEnd, now: number): void {
    this.standbyRefusals = end === 'standby' ? this.standbyRefusals + 1 : 0;
    if (end === 'standby') {
      this.standbySeenAt = now;
      this.avoidUntil.delete(address); // it answered: reachable
    } else if (end === 'shutdown') {
      this.avoidUntil.clear();
      this.avoidUntil.set(address, now + AVOID_MS);
      this.standbySeenAt = now;
      this.handoverAt = now;
    } else if (end === 'unreachable') {
      this.avoidUntil.set(address, now + AVOID_MS);
    }
  }

  /** A standby refused us and not every address has been asked since: dial the next now. */
  nextAtOnce(): boolean {
    return this.standbyRefusals > 0 && this.standbyRefusals < this.addresses.length;
  }

  /** The longest a retry should wait at `now` (an election or a handover is on), if any. */
  retryCapMs(now: number): number | undefined {
    if (this.handoverAt !== undefined && now - this.handoverAt < HANDOVER_WINDOW_MS)
      return HANDOVER_RETRY_MS;
    if (this.standbySeenAt !== undefined && now - this.standbySeenAt < ELECTION_WINDOW_MS)
      return ELECTION_RETRY_MS;
    return undefined;
  }
}
