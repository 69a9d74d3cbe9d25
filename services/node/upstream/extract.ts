/**
 * Reading a price out of an upstream's JSON: templates, paths, prices and times (contract:
 * NODE_UPSTREAM_SYMBOL, _PRICE_PATH, _TIME_PATH, _SYMBOL_PATH). Pure functions, no I/O;
 * every problem is a ReadOutcome with a detail that is safe to log.
 */
import type { Quote, ReadOutcome } from './types';

/** The placeholders a template may use. */
export const PLACEHOLDERS = ['pair', 'base', 'quote', 'symbol'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];
export type PairVars = Record<Placeholder, string>;

const PLACEHOLDER_RE = /\{([^{}]*)\}/g;

/** Placeholders in `template` that are not in `allowed` (for config checks). */
export function unknownPlaceholders(template: string, allowed: readonly string[]): string[] {
  const bad: string[] = [];
  for (const m of template.matchAll(PLACEHOLDER_RE)) if (!allowed.includes(m[1]!)) bad.push(m[0]);
  return bad;
}

/** Whether `template` uses any of `names`. */
export function usesPlaceholder(template: string, names: readonly string[]): boolean {
  for (const m of template.matchAll(PLACEHOLDER_RE)) if (names.includes(m[1]!)) return true;
  return false;
}

/** Fills `{name}` placeholders, each value passed through `encode`. */
export function fillTemplate(
  template: string,
  vars: Partial<PairVars>,
  encode: (s: string) => string = (s) => s,
): string {
  return template.replace(PLACEHOLDER_RE, (whole, name: string) => {
    const v = vars[name as Placeholder];
    return v === undefined ? whole : encode(v);
  });
}

/** Escapes a value for a place inside a JSON string (subscribe messages). */
export function jsonStringContent(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}

/**
 * The placeholder values of `pair`: `{symbol}` from the per-pair override, else the
 * symbol template over `{pair}`, `{base}`, `{quote}`.
 */
export function pairVars(
  pair: string,
  symbolTemplate: string,
  overrides: Readonly<Record<string, string>>,
): PairVars {
  const cut = pair.indexOf('_');
  const base = pair.slice(0, cut);
  const quote = pair.slice(cut + 1);
  const symbol = overrides[pair] ?? fillTemplate(symbolTemplate, { pair, base, quote });
  return { pair, base, quote, symbol };
}

/** `a.b.0.c`: keys and array indices; undefined where the path leads nowhere. */
export function getPath(value: unknown, path: string): unknown {
  let at: unknown = value;
  for (const seg of path.split('.')) {
    if (at === null || typeof at !== 'object') return undefined;
    if (Array.isArray(at)) {
      if (!/^\d+$/.test(seg)) return undefined;
      at = at[Number(seg)];
    } else {
      if (!Object.prototype.hasOwnProperty.call(at, seg)) return undefined;
      at = (at as Record<string, unknown>)[seg];
    }
  }
  return at;
}

const DECIMAL_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A JSON number or a numeric string, as a number; undefined if it is neither. */
export function numberFrom(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && DECIMAL_RE.test(value.trim())) return Number(value.trim());
  return undefined;
}

const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;
/** Epoch values below this are seconds, at or above it milliseconds (year 5138 in seconds). */
const EPOCH_MS_FROM = 1e11;

/**
 * An RFC 3339 string, a `YYYY-MM-DD` date (midnight UTC), or epoch seconds or
 * milliseconds as a number or numeric string; undefined if it is none of these.
 */
export function timeFrom(value: unknown): number | undefined {
  if (typeof value === 'string') {
    const s = value.trim();
    if (DATE_RE.test(s)) {
      const ms = Date.parse(`${s}T00:00:00Z`);
      return Number.isFinite(ms) ? ms : undefined;
    }
    if (RFC3339_RE.test(s)) {
      // Date.parse keeps milliseconds only; finer fractions are cut, not rounded.
      const ms = Date.parse(s.replace(/(\.\d{3})\d+/, '$1'));
      return Number.isFinite(ms) ? ms : undefined;
    }
  }
  const n = numberFrom(value);
  if (n === undefined || !Number.isFinite(n) || n <= 0) return undefined;
  return n < EPOCH_MS_FROM ? Math.round(n * 1000) : Math.round(n);
}

export interface ExtractRules {
  pricePath: string;
  timePath?: string;
  /** A quote dated before now - maxAgeMs is stale (NODE_UPSTREAM_MAX_AGE_MS). */
  maxAgeMs?: number;
  /** A quote dated after now + maxFutureMs is refused (clocks disagree, or a bad feed). */
  maxFutureMs: number;
}

export type Extracted =
  { ok: true; quote: Quote } | { ok: false; outcome: Exclude<ReadOutcome, 'ok'>; detail: string };

/** A dated future this far ahead of the node's clock is refused (the controller's default skew). */
export const MAX_FUTURE_MS = 5000;

/** The quote in a parsed JSON document, paths already filled for the pair. */
export function extractQuote(doc: unknown, rules: ExtractRules, nowMs: number): Extracted {
  const rawPrice = getPath(doc, rules.pricePath);
  if (rawPrice === undefined || rawPrice === null)
    return { ok: false, outcome: 'no_price', detail: `no value at ${rules.pricePath}` };
  const price = numberFrom(rawPrice);
  if (price === undefined || !Number.isFinite(price) || price <= 0)
    return {
      ok: false,
      outcome: 'bad_price',
      detail: `${rules.pricePath} is ${describe(rawPrice)}, not a finite positive number`,
    };
  if (rules.timePath === undefined)
    return { ok: true, quote: { price, atMs: nowMs, ownClock: true } };
  const rawTime = getPath(doc, rules.timePath);
  const atMs = timeFrom(rawTime);
  if (atMs === undefined)
    return {
      ok: false,
      outcome: 'bad_time',
      detail: `${rules.timePath} is ${describe(rawTime)}, not an RFC 3339 time, a date or epoch seconds/milliseconds`,
    };
  if (rules.maxAgeMs !== undefined && nowMs - atMs > rules.maxAgeMs)
    return {
      ok: false,
      outcome: 'stale',
      detail: `price dated ${new Date(atMs).toISOString()} is older than ${rules.maxAgeMs} ms`,
    };
  if (atMs - nowMs > rules.maxFutureMs)
    return {
      ok: false,
      outcome: 'future',
      detail: `price dated ${new Date(atMs).toISOString()} is more than ${rules.maxFutureMs} ms ahead of this node's clock`,
    };
  return { ok: true, quote: { price, atMs, ownClock: false } };
}

/** A short, log-safe description of a JSON value (upstream data, never a secret). */
export function describe(v: unknown): string {
  if (v === undefined) return 'missing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/** The config's paths for reading one pair's quote (templates over the pair's placeholders). */
export interface QuotePaths {
  pricePath: string;
  timePath?: string;
  maxAgeMs?: number;
}

/** The quote of the pair `vars` in a parsed document: both kinds read prices this way. */
export function quoteFor(
  doc: unknown,
  paths: QuotePaths,
  vars: PairVars,
  nowMs: number,
): Extracted {
  return extractQuote(
    doc,
    {
      pricePath: fillTemplate(paths.pricePath, vars),
      timePath: paths.timePath === undefined ? undefined : fillTemplate(paths.timePath, vars),
      maxAgeMs: paths.maxAgeMs,
      maxFutureMs: MAX_FUTURE_MS,
    },
    nowMs,
  );
}

/** Whether the value at NODE_UPSTREAM_SYMBOL_PATH names the pair `vars` (any case). */
export function symbolMatches(got: unknown, vars: PairVars): boolean {
  return (
    (typeof got === 'string' || typeof got === 'number') &&
    String(got).toLowerCase() === vars.symbol.toLowerCase()
  );
}
