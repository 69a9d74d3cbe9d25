/**
 * Raw environment -> validated, typed values. Every failure names the variable (or flag)
 * and says what is wrong; programs turn a ConfigError into exit code 2.
 */
import { z } from 'zod';
import { PAIR_PATTERN, UUID_PATTERN } from './protocol';

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

export { PAIR_PATTERN, UUID_PATTERN };
export const pairSchema = z
  .string()
  .regex(
    PAIR_PATTERN,
    'a currency pair is BASE_QUOTE in upper-case letters and digits, e.g. USD_HKD',
  );

export const uuidSchema = z
  .string()
  .regex(UUID_PATTERN, 'must be a UUID, e.g. 3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f');

/** The longest delay Node timers honour (a longer one fires after 1 ms). */
export const MAX_TIMER_MS = 2_147_483_647;

export interface HostPort {
  host: string;
  port: number;
}

const hostPortSchema = (allowPortZero: boolean) =>
  z.string().transform((raw, ctx): HostPort => {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d+)$/.exec(raw.trim());
    if (!m) {
      ctx.addIssue({ code: 'custom', message: `"${raw}" is not HOST:PORT` });
      return z.NEVER;
    }
    const port = Number(m[2]);
    const min = allowPortZero ? 0 : 1;
    if (!Number.isInteger(port) || port < min || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `port ${m[2]} is out of range ${min}-65535` });
      return z.NEVER;
    }
    return { host: m[1]!, port };
  });

/** A listen address; port 0 asks the OS for a free port (tests use it). */
export const listenAddrSchema = hostPortSchema(true);
/** An address to dial. */
export const dialAddrSchema = hostPortSchema(false);

/**
 * A whole number written in decimal digits only: `0x2`, `1e3`, `2.0`, `+2` and ` 2 ` are
 * refused rather than read as something the operator may not have meant.
 */
export function decimalIntSchema(min: number, max = MAX_TIMER_MS) {
  return z
    .string()
    .regex(/^-?\d+$/, 'must be a whole number in decimal digits')
    .transform(Number)
    .pipe(
      z
        .number()
        .int('must be a whole number')
        .min(min, min === 1 ? 'must be greater than 0' : `must be at least ${min}`)
        .max(max, `must be at most ${max}`),
    );
}

export const positiveIntSchema = decimalIntSchema(1);
export const nonNegativeIntSchema = decimalIntSchema(0, Number.MAX_SAFE_INTEGER);

/** Comma-separated list, blanks dropped. */
export function listOf<T>(item: z.ZodType<T, string>) {
  return z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== ''),
    )
    .pipe(z.array(item).min(1, 'must list at least one value'));
}

export const logLevelSchema = z.enum([
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
]);

/**
 * Reads one variable: `undefined` or blank takes `fallback` (itself validated, so a
 * default is held to the same rules), anything else must pass `schema`.
 */
export function readVar<T>(env: Env, name: string, schema: z.ZodType<T>, fallback?: string): T {
  const raw = env[name];
  const value = raw === undefined || raw.trim() === '' ? fallback : raw;
  if (value === undefined) throw new ConfigError(name, 'is required but not set');
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const problem = parsed.error.issues.map((i) => i.message).join('; ');
    throw new ConfigError(name, `invalid value "${value}": ${problem}`);
  }
  return parsed.data;
}

export function formatHostPort(a: HostPort): string {
  return `${a.host}:${a.port}`;
}
