/**
 * Time and randomness come in through deps so that tests can control them: every timer,
 * immediate and `now()` of the controller, the node and the CLI session goes through one
 * Scheduler, and tests advance a fake one (tests/support/fake-scheduler.ts) instead of
 * sleeping.
 */
export interface Scheduler {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  /** Runs `fn` at the end of this event-loop turn (after I/O callbacks already due). */
  setImmediate(fn: () => void): TimerHandle;
  clearImmediate(handle: TimerHandle): void;
}

export type TimerHandle = { readonly __timer: unique symbol } | NodeJS.Timeout | NodeJS.Immediate;

export const systemScheduler: Scheduler = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  setImmediate: (fn) => setImmediate(fn),
  clearImmediate: (h) => clearImmediate(h as NodeJS.Immediate),
};

/** A uniform random number in [0, 1). */
export type Random = () => number;

/** Small deterministic PRNG (mulberry32) for seeded tests and replayable chaos runs. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
