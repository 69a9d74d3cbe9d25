/** Log lines that could repeat at the rate of failures, written at most once per period. */
import type { Logger } from '../../shared/logger';

/** The same log line (by key) is written at most this often; the lines left out are counted. */
export const LOG_EVERY_MS = 30_000;

export type LimitedLog = (
  level: 'debug' | 'info' | 'warn',
  key: string,
  fields: Record<string, unknown>,
  msg: string,
) => void;

/**
 * A log that writes a line at most once per `everyMs` per key, with `base` fields and the
 * count of lines left out since the last one written (`suppressed`). Bounded: callers use
 * a fixed few keys.
 */
export function limitedLog(
  log: Logger,
  now: () => number,
  base: Record<string, unknown>,
  everyMs = LOG_EVERY_MS,
): LimitedLog {
  const lastLogged = new Map<string, { atMs: number; suppressed: number }>();
  return (level, key, fields, msg) => {
    const at = now();
    const last = lastLogged.get(key);
    if (last && at - last.atMs < everyMs) {
      last.suppressed++;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    lastLogged.set(key, { atMs: at, suppressed: 0 });
    log[level]({ ...base, ...fields, suppressed }, msg);
  };
}
