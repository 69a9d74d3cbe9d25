/**
 * Progress, not just liveness: when each streamer last sent a valid price for each pair
 * (or was told to start), and since when each known pair has had no capable node. A sweep
 * every second hands back the streamers that went quiet (CONTROLLER_STALE_STREAM_MS) and
 * the pairs to forget (CONTROLLER_FORGET_PAIR_AFTER_MS); the core acts on them.
 */
import type { Scheduler, TimerHandle } from '../../../shared/scheduler';
import type { Assignment } from './assignment';
import type { PairSlot } from './pair-slots';

/** How often quiet streamers and orphaned pairs are looked for, at most. */
const SWEEP_MS = 1000;

export interface UpkeepActions {
  /** `uuid` sent nothing for `pair` for `quietMs`; true if the pair moved away from it. */
  quiet(uuid: string, pair: string, quietMs: number): boolean;
  forget(pair: string, idleMs: number): void;
}

/**
 * Each streamer's progress is a record in its pair's slot (the assignment's, pair-slots.ts),
 * written in place: a price update costs no map write and no allocation.
 */
export class Upkeep {
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
    this.markIn(this.assignment.slots.of(pair), uuid, at);
  }

  /**
   * `mark`, for the pair of `slot` (already looked up: the price intake's hot path). The
   * record written last is kept at hand, so a pair's primary finds its own without a lookup.
   */
  markIn(slot: PairSlot, uuid: string, at: number): void {
    let p = slot.lastProgress;
    if (p === undefined || p.uuid !== uuid) {
      p = slot.progress.get(uuid);
      if (p === undefined) slot.progress.set(uuid, (p = { uuid, at }));
      slot.lastProgress = p;
    }
    p.at = at;
  }

  /** Like mark, unless `uuid` is already being watched on `pair`. */
  markIfNew(uuid: string, pair: string): void {
    if (!this.assignment.slots.get(pair)?.progress.has(uuid)) this.mark(uuid, pair);
  }

  /**
   * `uuid` no longer streams `pair`: its progress goes, so that if it is given the pair
   * again (a withdrawn pair announced again a moment later) it starts afresh.
   */
  unmark(uuid: string, pair: string): void {
    const slot = this.assignment.slots.get(pair);
    if (slot) forgetProgress(slot, uuid);
  }

  /** Every node left at once (Assignment.removeAllNodes): no streamer's progress is kept. */
  forgetAllProgress(): void {
    for (const slot of this.assignment.slots.values()) {
      slot.progress.clear();
      slot.lastProgress = undefined;
    }
  }

  /** Whether `uuid` sent a valid price for `pair` (or started it) within CONTROLLER_STALE_STREAM_MS. */
  isLive(uuid: string, pair: string, now = this.scheduler.now()): boolean {
    const p = this.assignment.slots.get(pair)?.progress.get(uuid);
    return p !== undefined && now - p.at < this.limits.staleStreamMs;
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
    for (const slot of [...this.assignment.slots.values()]) {
      if (slot.progress.size === 0) continue;
      const pair = slot.pair;
      for (const p of [...slot.progress.values()]) {
        const last = p.at;
        if (!slot.streams(p.uuid)) forgetProgress(slot, p.uuid);
        else if (now - last >= staleStreamMs && this.actions.quiet(p.uuid, pair, now - last))
          forgetProgress(slot, p.uuid);
      }
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

function forgetProgress(slot: PairSlot, uuid: string): void {
  slot.progress.delete(uuid);
  if (slot.lastProgress?.uuid === uuid) slot.lastProgress = undefined;
}
