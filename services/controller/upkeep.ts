/**
 * Progress, not just liveness: when each streamer last sent a valid price for each pair
 * (or was told to start), and since when each known pair has had no capable node. A sweep
 * every second hands back the streamers that went quiet (CONTROLLER_STALE_STREAM_MS) and
 * the pairs to forget (CONTROLLER_FORGET_PAIR_AFTER_MS); the core acts on them.
 */
import type { Scheduler, TimerHandle } from '../shared/scheduler';
import type { Assignment } from './assignment';

/** How often quiet streamers and orphaned pairs are looked for, at most. */
const SWEEP_MS = 1000;

export interface UpkeepActions {
  /** `uuid` sent nothing for `pair` for `quietMs`; true if the pair moved away from it. */
  quiet(uuid: string, pair: string, quietMs: number): boolean;
  forget(pair: string, idleMs: number): void;
}

export class Upkeep {
  /** pair -> streamer -> when it last sent a valid price (or was told to start). */
  private readonly progress = new Map<string, Map<string, number>>();
  /** pair -> since when no connected node can stream it. */
  private readonly orphanedSince = new Map<string, number>();
  private timer?: TimerHandle;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly assignment: Assignment,
    private readonly limits: { staleStreamMs: number; forgetPairAfterMs: number },
    private readonly actions: UpkeepActions,
  ) {
    this.schedule();
  }

  /** `uuid` sent a valid price for `pair` (or starts streaming it) now. */
  mark(uuid: string, pair: string, at = this.scheduler.now()): void {
    let byNode = this.progress.get(pair);
    if (!byNode) this.progress.set(pair, (byNode = new Map()));
    byNode.set(uuid, at);
  }

  /** Like mark, unless `uuid` is already being watched on `pair`. */
  markIfNew(uuid: string, pair: string): void {
    if (!this.progress.get(pair)?.has(uuid)) this.mark(uuid, pair);
  }

  /**
   * `uuid` no longer streams `pair`: its progress goes, so that if it is given the pair
   * again (a withdrawn pair announced again a moment later) it starts afresh.
   */
  unmark(uuid: string, pair: string): void {
    const byNode = this.progress.get(pair);
    if (byNode?.delete(uuid) && byNode.size === 0) this.progress.delete(pair);
  }

  /** Whether `uuid` sent a valid price for `pair` (or started it) within CONTROLLER_STALE_STREAM_MS. */
  isLive(uuid: string, pair: string, now = this.scheduler.now()): boolean {
    const last = this.progress.get(pair)?.get(uuid);
    return last !== undefined && now - last < this.limits.staleStreamMs;
  }

  stop(): void {
    if (this.timer) this.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    const { staleStreamMs, forgetPairAfterMs } = this.limits;
    const every = Math.max(1, Math.min(SWEEP_MS, staleStreamMs / 4, forgetPairAfterMs / 4));
    this.timer = this.scheduler.setTimeout(() => {
      this.sweep();
      this.schedule();
    }, every);
    // A sweep alone never keeps the process alive.
    (this.timer as { unref?: () => void }).unref?.();
  }

  private sweep(): void {
    const now = this.scheduler.now();
    const { staleStreamMs, forgetPairAfterMs } = this.limits;
    for (const [pair, byNode] of [...this.progress]) {
      for (const [uuid, last] of [...byNode]) {
        if (!this.assignment.isStreaming(uuid, pair)) byNode.delete(uuid);
        else if (now - last >= staleStreamMs && this.actions.quiet(uuid, pair, now - last))
          byNode.delete(uuid);
      }
      if (byNode.size === 0) this.progress.delete(pair);
    }
    for (const pair of this.assignment.knownPairs()) {
      if (this.assignment.capableCount(pair) > 0) {
        this.orphanedSince.delete(pair);
        continue;
      }
      const since = this.orphanedSince.get(pair);
      if (since === undefined) this.orphanedSince.set(pair, now);
      else if (now - since >= forgetPairAfterMs) {
        this.orphanedSince.delete(pair);
        this.actions.forget(pair, now - since);
      }
    }
  }
}
