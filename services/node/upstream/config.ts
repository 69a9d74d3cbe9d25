/**
 * NODE_UPSTREAM_* (where a node's prices come from): raw environment -> validated config.
 * Every problem is a ConfigError naming the variable (exit 2 at start). The rules a
 * variable does not say are written in docs/upstreams.md.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import {
  ConfigError,
  type Env,
  decimalIntSchema,
  pairSchema,
  positiveIntSchema,
  readVar,
} from '../../shared/config';
import {
  PLACEHOLDERS,
  fillTemplate,
  pairVars,
  unknownPlaceholders,
  usesPlaceholder,
} from './extract';
import { HeadersFile } from './headers-file';

export type UpstreamKind = 'simulated' | 'http' | 'websocket';

export interface UpstreamConfig {
  kind: UpstreamKind;
  /** URL template ({pair}, {base}, {quote}, {symbol}; http only: websocket has one connection). */
  url: string;
  symbolTemplate: string;
  symbols: Record<string, string>;
  pricePath: string;
  timePath?: string;
  symbolPath?: string;
  subscribe?: string;
  unsubscribe?: string;
  headersFile?: string;
  caFile?: string;
  /** Extra CA certificates, PEM, read at start. */
  ca?: string;
  timeoutMs: number;
  maxRps: number;
  failAfterMs: number;
  maxAgeMs?: number;
  /** Cap of one HTTP body or WebSocket message (programmatic; docs/upstreams.md). */
  maxBodyBytes: number;
}

export const UPSTREAM_DEFAULTS = {
  kind: 'simulated',
  symbol: '{base}{quote}',
  timeoutMs: '3000',
  maxRps: '10',
  failAfterMs: '10000',
  maxBodyBytes: 1024 * 1024,
} as const;

/** Variables that mean something only for a real upstream. */
const REAL_ONLY = [
  'NODE_UPSTREAM_URL',
  'NODE_UPSTREAM_SYMBOL',
  'NODE_UPSTREAM_SYMBOLS',
  'NODE_UPSTREAM_PRICE_PATH',
  'NODE_UPSTREAM_TIME_PATH',
  'NODE_UPSTREAM_SYMBOL_PATH',
  'NODE_UPSTREAM_SUBSCRIBE',
  'NODE_UPSTREAM_UNSUBSCRIBE',
  'NODE_UPSTREAM_HEADERS_FILE',
  'NODE_UPSTREAM_CA_FILE',
  'NODE_UPSTREAM_MAX_AGE_MS',
] as const;

const pathSchema = z
  .string()
  .refine(
    (p) => p.split('.').every((s) => s !== ''),
    'a path is keys and indices joined by ".", e.g. data.amount or 0.p',
  );

const symbolsSchema = z.string().transform((raw, ctx) => {
  const out: Record<string, string> = {};
  for (const item of raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const eq = item.indexOf('=');
    const pair = eq > 0 ? item.slice(0, eq).trim() : '';
    const symbol = eq > 0 ? item.slice(eq + 1).trim() : '';
    if (!pairSchema.safeParse(pair).success || symbol === '') {
      ctx.addIssue({
        code: 'custom',
        message: `"${item}" is not PAIR=SYMBOL (e.g. BTC_USD=BTCUSDT)`,
      });
      return z.NEVER;
    }
    out[pair] = symbol;
  }
  return out;
});

const rpsSchema = z
  .string()
  .regex(/^\d+(\.\d+)?$/, 'must be a positive decimal number, e.g. 10 or 0.5')
  .transform(Number)
  .pipe(z.number().positive('must be greater than 0').max(100_000, 'must be at most 100000'));

function template(env: Env, name: string, allowed: readonly string[], fallback?: string) {
  const value = readVar(env, name, z.string(), fallback);
  const bad = unknownPlaceholders(value, allowed);
  if (bad.length > 0)
    throw new ConfigError(
      name,
      `unknown placeholder ${bad[0]}; use ${allowed.map((a) => `{${a}}`).join(', ')}`,
    );
  return value;
}

function optional(env: Env, name: string): boolean {
  const v = env[name];
  return v !== undefined && v.trim() !== '';
}

/** Reads NODE_UPSTREAM_*; `pairs` are the node's pairs (to check every URL they make). */
export function loadUpstreamConfig(env: Env, pairs: readonly string[]): UpstreamConfig {
  const kind = readVar(
    env,
    'NODE_UPSTREAM',
    z.enum(['simulated', 'http', 'websocket'], { message: 'must be simulated, http or websocket' }),
    UPSTREAM_DEFAULTS.kind,
  );
  const timeoutMs = readVar(
    env,
    'NODE_UPSTREAM_TIMEOUT_MS',
    positiveIntSchema,
    UPSTREAM_DEFAULTS.timeoutMs,
  );
  const maxRps = readVar(env, 'NODE_UPSTREAM_MAX_RPS', rpsSchema, UPSTREAM_DEFAULTS.maxRps);
  const failAfterMs = readVar(
    env,
    'NODE_UPSTREAM_FAIL_AFTER_MS',
    decimalIntSchema(100),
    UPSTREAM_DEFAULTS.failAfterMs,
  );
  if (kind === 'simulated') {
    // Set to something other than its default: a real upstream was meant, not simulated.
    const stray = REAL_ONLY.find(
      (n) =>
        optional(env, n) &&
        !(n === 'NODE_UPSTREAM_SYMBOL' && env[n]!.trim() === UPSTREAM_DEFAULTS.symbol),
    );
    if (stray)
      throw new ConfigError(
        stray,
        'is set, but NODE_UPSTREAM is simulated: set NODE_UPSTREAM=http or websocket, or unset it',
      );
    return {
      kind,
      url: '',
      symbolTemplate: UPSTREAM_DEFAULTS.symbol,
      symbols: {},
      pricePath: '',
      timeoutMs,
      maxRps,
      failAfterMs,
      maxBodyBytes: UPSTREAM_DEFAULTS.maxBodyBytes,
    };
  }

  const symbolTemplate = template(
    env,
    'NODE_UPSTREAM_SYMBOL',
    ['pair', 'base', 'quote'],
    UPSTREAM_DEFAULTS.symbol,
  );
  const symbols = optional(env, 'NODE_UPSTREAM_SYMBOLS')
    ? readVar(env, 'NODE_UPSTREAM_SYMBOLS', symbolsSchema)
    : {};
  const url = template(env, 'NODE_UPSTREAM_URL', PLACEHOLDERS);
  const schemes = kind === 'http' ? ['http:', 'https:'] : ['ws:', 'wss:'];
  if (kind === 'websocket' && usesPlaceholder(url, PLACEHOLDERS))
    throw new ConfigError(
      'NODE_UPSTREAM_URL',
      'a websocket upstream is one connection per node, so its URL takes no {pair}, {base}, {quote} or {symbol}; name pairs in NODE_UPSTREAM_SUBSCRIBE',
    );
  for (const pair of pairs.length > 0 ? pairs : ['USD_HKD']) {
    const filled = fillTemplate(url, pairVars(pair, symbolTemplate, symbols), encodeURIComponent);
    let parsed: URL;
    try {
      parsed = new URL(filled);
    } catch {
      throw new ConfigError('NODE_UPSTREAM_URL', `"${filled}" is not a URL`);
    }
    if (!schemes.includes(parsed.protocol))
      throw new ConfigError(
        'NODE_UPSTREAM_URL',
        `must start with ${schemes.map((s) => `${s}//`).join(' or ')} for NODE_UPSTREAM=${kind}`,
      );
    if (parsed.username !== '' || parsed.password !== '')
      throw new ConfigError(
        'NODE_UPSTREAM_URL',
        'may not carry a user or password; put credentials in NODE_UPSTREAM_HEADERS_FILE',
      );
  }
  const pricePath = readVar(env, 'NODE_UPSTREAM_PRICE_PATH', pathSchema);
  const bad = unknownPlaceholders(pricePath, PLACEHOLDERS);
  if (bad.length > 0)
    throw new ConfigError('NODE_UPSTREAM_PRICE_PATH', `unknown placeholder ${bad[0]}`);
  const timePath = optional(env, 'NODE_UPSTREAM_TIME_PATH')
    ? readVar(env, 'NODE_UPSTREAM_TIME_PATH', pathSchema)
    : undefined;
  const symbolPath =
    kind === 'websocket'
      ? readVar(env, 'NODE_UPSTREAM_SYMBOL_PATH', pathSchema)
      : optional(env, 'NODE_UPSTREAM_SYMBOL_PATH')
        ? readVar(env, 'NODE_UPSTREAM_SYMBOL_PATH', pathSchema)
        : undefined;
  for (const [name, value] of [
    ['NODE_UPSTREAM_TIME_PATH', timePath],
    ['NODE_UPSTREAM_SYMBOL_PATH', symbolPath],
  ] as const) {
    const wrong = value === undefined ? [] : unknownPlaceholders(value, PLACEHOLDERS);
    if (wrong.length > 0) throw new ConfigError(name, `unknown placeholder ${wrong[0]}`);
  }
  let subscribe: string | undefined;
  let unsubscribe: string | undefined;
  if (kind === 'websocket') {
    if (optional(env, 'NODE_UPSTREAM_SUBSCRIBE'))
      subscribe = template(env, 'NODE_UPSTREAM_SUBSCRIBE', PLACEHOLDERS);
    if (optional(env, 'NODE_UPSTREAM_UNSUBSCRIBE'))
      unsubscribe = template(env, 'NODE_UPSTREAM_UNSUBSCRIBE', PLACEHOLDERS);
  } else {
    for (const n of ['NODE_UPSTREAM_SUBSCRIBE', 'NODE_UPSTREAM_UNSUBSCRIBE'])
      if (optional(env, n)) throw new ConfigError(n, 'is for NODE_UPSTREAM=websocket only');
  }
  const headersFile = optional(env, 'NODE_UPSTREAM_HEADERS_FILE')
    ? env.NODE_UPSTREAM_HEADERS_FILE!.trim()
    : undefined;
  if (headersFile !== undefined) {
    try {
      new HeadersFile(headersFile);
    } catch (err) {
      throw new ConfigError(
        'NODE_UPSTREAM_HEADERS_FILE',
        `cannot use ${headersFile}: ${(err as Error).message}`,
      );
    }
  }
  const caFile = optional(env, 'NODE_UPSTREAM_CA_FILE')
    ? env.NODE_UPSTREAM_CA_FILE!.trim()
    : undefined;
  let ca: string | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (err) {
      throw new ConfigError(
        'NODE_UPSTREAM_CA_FILE',
        `cannot read ${caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----'))
      throw new ConfigError('NODE_UPSTREAM_CA_FILE', `${caFile} holds no PEM certificate`);
  }
  const maxAgeMs = optional(env, 'NODE_UPSTREAM_MAX_AGE_MS')
    ? readVar(env, 'NODE_UPSTREAM_MAX_AGE_MS', positiveIntSchema)
    : undefined;
  return {
    kind,
    url,
    symbolTemplate,
    symbols,
    pricePath,
    timePath,
    symbolPath,
    subscribe,
    unsubscribe,
    headersFile,
    caFile,
    ca,
    timeoutMs,
    maxRps,
    failAfterMs,
    maxAgeMs,
    maxBodyBytes: UPSTREAM_DEFAULTS.maxBodyBytes,
  };
}
