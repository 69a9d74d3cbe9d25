/**
 * Upstream health per pair: when a streamed pair's upstream has given no valid price for
 * NODE_UPSTREAM_FAIL_AFTER_MS it is withdrawn (a pull upstream's pair at its next failed
 * answer after that, so that a read still in flight, or not yet due because the interval
 * is longer, is not taken for a failure; a push upstream's pair at once, since a silent
 * feed gives no answer at all, its clock held while the pair's subscription waits to go) (the node announces its known pairs without
 * it, and the controller moves it); a withdrawn pair is probed at a low rate and comes back
 * once its upstream answers well again. Pure rules on the injected scheduler, no I/O.
 *
 * Hysteresis (docs/upstreams.md, "When an upstream fails"), so that an upstream that
 * alternates between good and bad answers does not make the pair flap between nodes:
 * - a withdrawn pair returns only after RESTORE_STREAK valid answers in a row (any failed
 *   answer starts the count again), and
 * - not before a hold-down has passed since it was withdrawn: failAfterMs the first time,
 *   doubling with each further withdrawal within FLAP_WINDOW_MS, capped at MAX_HOLD_MS
 *   (or failAfterMs, if that is longer). A pair that stays clear of withdrawals for
 *   FLAP_WINDOW_MS starts again from failAfterMs.
 */
import type { Scheduler, TimerHandle } from '../../shared/scheduler';

export const RESTORE_STREAK = 3;
export const FLAP_WINDOW_MS = 30 * 60_000;
export const MAX_HOLD_MS = 5 * 60_000;

/** How often a withdrawn pair's upstream is probed (pull upstreams): failAfterMs / 2 within 0.5-30 s. */
export function probeIntervalMs(failAfterMs: number): number {
  return Math.min(30_000, Math.max(500, Math.round(failAfterMs / 2)));
}

export interface UpstreamHealthDeps {
  scheduler: Scheduler;
  failAfterMs: number;
  /** The pair is withdrawn: announce the known set without it. */
  onWithdraw(pair: string, quietMs: number): void;
  /** The pair is back: announce the known set with it. */
  onRestore(pair: string, withdrawnMs: number): void;
  /** Read a withdrawn pair once (pull upstreams); undefined for push upstreams. */
  probe?: (pair: string) => void;
  /** Push upstreams: the pair's subscription has not gone out yet (its clock waits). */
  waiting?: (pair: string) => boolean;
}

interface Watched {
  lastGoodMs: number;
  timer: TimerHandle;
  /** Quiet for failAfterMs; a pull upstream's pair goes at its next failed answer. */
  due: boolean;
}

interface Withdrawn {
  sinceMs: number;
  holdUntilMs: number;
  streak: number;
  probe?: TimerHandle;
}

interface History {
  flaps: number;
  lastWithdrawMs: number;
}

export class UpstreamHealth {
  private readonly watched = new Map<string, Watched>();
  private readonly out = new Map<string, Withdrawn>();
  private readonly history = new Map<string, History>();
  private closed = false;

  constructor(private readonly deps: UpstreamHealthDeps) {}

  isWithdrawn(pair: string): boolean {
    return this.out.has(pair);
  }

  withdrawnPairs(): string[] {
    return [...this.out.keys()].sort();
  }

  /** `pair` started streaming: its upstream must give a valid price within failAfterMs. */
  streaming(pair: string): void {
    if (this.closed || this.watched.has(pair) || this.out.has(pair)) return;
    const { scheduler, failAfterMs } = this.deps;
    const w: Watched = {
      lastGoodMs: scheduler.now(),
      timer: scheduler.setTimeout(() => this.check(pair), failAfterMs),
      due: false,
    };
    this.watched.set(pair, w);
  }

  /** `pair` stopped streaming (moved, or the controller stream was lost). */
  stopped(pair: string): void {
    const w = this.watched.get(pair);
    if (!w) return;
    this.deps.scheduler.clearTimeout(w.timer);
    this.watched.delete(pair);
  }

  /** A valid price for `pair`. */
  good(pair: string): void {
    const now = this.deps.scheduler.now();
    const w = this.watched.get(pair);
    if (w) {
      w.lastGoodMs = now;
      if (w.due) {
        w.due = false;
        w.timer = this.deps.scheduler.setTimeout(() => this.check(pair), this.deps.failAfterMs);
      }
    }
    const o = this.out.get(pair);
    if (!o) return;
    o.streak++;
    if (o.streak >= RESTORE_STREAK && now >= o.holdUntilMs) this.restore(pair, o, now);
  }

  /** A failed read or message for `pair`. */
  bad(pair: string): void {
    const o = this.out.get(pair);
    if (o) o.streak = 0;
    const w = this.watched.get(pair);
    if (w?.due) {
      this.watched.delete(pair);
      this.withdraw(pair, this.deps.scheduler.now() - w.lastGoodMs);
    }
  }

  close(): void {
    this.closed = true;
    for (const pair of [...this.watched.keys()]) this.stopped(pair);
    for (const o of this.out.values()) if (o.probe) this.deps.scheduler.clearTimeout(o.probe);
    this.out.clear();
  }

  private check(pair: string): void {
    const w = this.watched.get(pair);
    if (!w) return;
    const { scheduler, failAfterMs } = this.deps;
    if (this.deps.waiting?.(pair)) w.lastGoodMs = scheduler.now();
    const quietMs = scheduler.now() - w.lastGoodMs;
    if (quietMs < failAfterMs) {
      w.timer = scheduler.setTimeout(() => this.check(pair), failAfterMs - quietMs);
      return;
    }
    if (this.deps.probe) {
      // A pull upstream: withdrawn at its next failed answer (good() clears this).
      w.due = true;
      return;
    }
    this.watched.delete(pair);
    this.withdraw(pair, quietMs);
  }

  private withdraw(pair: string, quietMs: number): void {
    const { scheduler, failAfterMs } = this.deps;
    const now = scheduler.now();
    const h = this.history.get(pair) ?? { flaps: 0, lastWithdrawMs: -Infinity };
    if (now - h.lastWithdrawMs > FLAP_WINDOW_MS) h.flaps = 0;
    h.flaps++;
    h.lastWithdrawMs = now;
    this.history.set(pair, h);
    const holdMs = Math.min(
      failAfterMs * 2 ** Math.min(h.flaps - 1, 20),
      Math.max(MAX_HOLD_MS, failAfterMs),
    );
    const o: Withdrawn = { sinceMs: now, holdUntilMs: now + holdMs, streak: 0 };
    this.out.set(pair, o);
    this.scheduleProbe(pair, o);
    this.deps.onWithdraw(pair, quietMs);
  }

  private scheduleProbe(pair: string, o: Withdrawn): void {
    const probe = this.deps.probe;
    if (!probe) return;
    o.probe = this.deps.scheduler.setTimeout(() => {
      o.probe = undefined;
      if (this.out.get(pair) !== o) return;
      this.scheduleProbe(pair, o);
      probe(pair);
    }, probeIntervalMs(this.deps.failAfterMs));
  }

  private restore(pair: string, o: Withdrawn, now: number): void {
    if (o.probe) this.deps.scheduler.clearTimeout(o.probe);
    this.out.delete(pair);
    this.deps.onRestore(pair, now - o.sinceMs);
  }
}
