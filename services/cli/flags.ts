/** Strict parsing of the CLI's numeric flags: decimal digits only, range-checked. */
import { MAX_TIMER_MS } from '../shared/config';

export class UsageError extends Error {}

/** Longest wait a timer honours, in whole seconds (a longer one would fire at once). */
export const MAX_SECONDS = Math.floor(MAX_TIMER_MS / 1000);

/**
 * Seconds as plain decimal, fractions allowed down to milliseconds (`5`, `0.5`, `2.25`):
 * `1e3`, `0x10`, `+5`, `.5` and `5s` are refused rather than guessed at.
 * Returns milliseconds.
 */
export function parseSeconds(flag: string, raw: string): number {
  const fail = (why: string) => new UsageError(`${flag}: invalid value "${raw}": ${why}`);
  if (!/^\d+(\.\d+)?$/.test(raw))
    throw fail('must be a number of seconds > 0 in decimal digits, e.g. 5 or 0.5');
  const ms = Math.round(Number(raw) * 1000);
  if (ms < 1) throw fail('must be a number of seconds > 0, at least 0.001');
  if (ms > MAX_SECONDS * 1000) throw fail(`must be at most ${MAX_SECONDS} seconds`);
  return ms;
}
