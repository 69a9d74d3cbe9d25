/**
 * A Scheduler whose time moves only when the test says so. `advance(ms)` runs every timer
 * due within that span in time order (timers set by those timers too), and the immediates
 * queued along the way; `flush()` runs the immediates alone.
 */
import type { Scheduler, TimerHandle } from '../../services/shared/scheduler';

export interface FakeScheduler extends Scheduler {
  advance(ms: number): void;
  flush(): void;
  /** Timers and immediates not yet run. */
  pending(): number;
}

export function fakeScheduler(startMs = 1_700_000_000_000): FakeScheduler {
  let nowMs = startMs;
  let nextId = 1;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const immediates = new Map<number, () => void>();
  const handle = (id: number) => id as unknown as TimerHandle;
  const idOf = (h: TimerHandle) => h as unknown as number;

  const flush = () => {
    // Bounded: an immediate that keeps queueing immediates is a bug the test should see.
    for (let round = 0; immediates.size > 0; round++) {
      if (round > 10_000) throw new Error('fakeScheduler: immediates keep queueing themselves');
      const due = [...immediates.values()];
      immediates.clear();
      for (const fn of due) fn();
    }
  };

  const s: FakeScheduler = {
    now: () => nowMs,
    setTimeout: (fn, ms) => {
      const id = nextId++;
      timers.set(id, { at: nowMs + Math.max(0, ms), fn });
      return handle(id);
    },
    clearTimeout: (h) => void timers.delete(idOf(h)),
    setImmediate: (fn) => {
      const id = nextId++;
      immediates.set(id, fn);
      return handle(id);
    },
    clearImmediate: (h) => void immediates.delete(idOf(h)),
    advance: (ms) => {
      const until = nowMs + ms;
      flush();
      for (;;) {
        let next: [number, { at: number; fn: () => void }] | undefined;
        for (const e of timers) if (e[1].at <= until && (!next || e[1].at < next[1].at)) next = e;
        if (!next) break;
        timers.delete(next[0]);
        nowMs = Math.max(nowMs, next[1].at);
        next[1].fn();
        flush();
      }
      nowMs = until;
    },
    flush,
    pending: () => timers.size + immediates.size,
  };
  return s;
}
