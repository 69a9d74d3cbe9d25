/** Small fakes and assertions shared by unit tests. */
import type { Scheduler, TimerHandle } from '../../services/shared/scheduler';
import { ConfigError } from '../../services/shared/config';

/** Runs `f`, expects it to throw a ConfigError, and returns it for further checks. */
export function configError(f: () => unknown): ConfigError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, got none');
}

/** A scheduler whose timers and immediates run only when the test says so (`fire`), at time 0. */
export function manualClock(): Scheduler & { fire(): void; pending(): number } {
  const timers = new Map<number, () => void>();
  let next = 1;
  return {
    now: () => 0,
    setTimeout: (fn) => {
      const id = next++;
      timers.set(id, fn);
      return id as unknown as TimerHandle;
    },
    clearTimeout: (h) => void timers.delete(h as unknown as number),
    setImmediate: (fn) => {
      const id = next++;
      timers.set(id, fn);
      return id as unknown as TimerHandle;
    },
    clearImmediate: (h) => void timers.delete(h as unknown as number),
    fire: () => {
      const due = [...timers.values()];
      timers.clear();
      for (const fn of due) fn();
    },
    pending: () => timers.size,
  };
}
