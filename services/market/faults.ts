/**
 * The market's faults: which are set (per symbol and per client, the most specific wins)
 * and what a quote or ticker's price says under one. How each transport acts a fault out
 * is in ./http-routes.ts (quotes) and ./ws-stream.ts (tickers and connects).
 */
import { z } from 'zod';
import { marketPrice } from '../node/prices';
import type { Logger } from '../shared/logger';
import { resolveSymbol } from './symbols';

/**
 * What each fault does, over HTTP (a quote) and WebSocket (each pushed ticker):
 *   http_500      500 with a JSON error           | {"type":"error","symbol","code":500,...}
 *   timeout       never answered                  | nothing sent
 *   reset         TCP reset, no answer            | connection dropped without a close frame
 *   invalid_json  200 with truncated JSON         | a truncated JSON message
 *   html          502 with an HTML error page     | the HTML page as a message
 *   missing       no "price" field                | ticker without "price"
 *   nan           "price":"NaN"                   | "price":"NaN"
 *   negative      the price negated               | the price negated
 *   zero          "price":"0"                     | "price":0
 *   stale         time (and price) 1 hour ago     | the same
 *   huge          a 50 MB JSON body in chunks, stopped when the client goes away
 *                                                 | a 50 MB message in fragments, the same
 *   rate_limit    429 with Retry-After: 2         | {"type":"error","code":429,"retryAfter":2}
 *   silent        as timeout                      | nothing sent for that symbol
 *   close         connection ended, no answer     | close frame 1011, mid-stream
 * A WebSocket connect under a fault for every symbol of its client (no symbol) fails the way
 * the HTTP mode would, where a handshake can: http_500, rate_limit (429), html (502), reset,
 * timeout (never answered). Among several faults that match, the most specific wins: symbol
 * and client, then symbol, then client, then the one for everything.
 */
export const FAULT_MODES = [
  'http_500',
  'timeout',
  'reset',
  'invalid_json',
  'html',
  'missing',
  'nan',
  'negative',
  'zero',
  'stale',
  'huge',
  'rate_limit',
  'silent',
  'close',
] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

/** A fault: `mode` for `symbol` (unset: every symbol) asked by `client` (unset: every client). */
export interface Fault {
  symbol?: string;
  client?: string;
  mode: FaultMode;
}

export const STALE_MS = 60 * 60_000;
export const RETRY_AFTER_S = 2;
const MAX_FAULTS = 1024;

/** The body of an `html` fault, over HTTP and WebSocket alike. */
export const HTML_PAGE =
  '<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>' +
  '<body><h1>502 Bad Gateway</h1><p>The upstream market is unavailable.</p></body></html>\n';

const faultSchema = z.strictObject({
  symbol: z.string().min(1).max(40).optional(),
  client: z.string().min(1).max(200).optional(),
  mode: z.enum(FAULT_MODES, { message: `mode must be one of ${FAULT_MODES.join(', ')}` }),
});

/** The faults set on one market. */
export interface FaultTable {
  /** Sets a fault (a later one for the same symbol and client replaces it); throws if invalid. */
  set(f: Fault): void;
  clear(): void;
  list(): Fault[];
  /** The most specific fault: symbol and client, then symbol, then client, then everything. */
  modeFor(symbol: string | undefined, client: string): FaultMode | undefined;
}

export function createFaultTable(pairs: readonly string[], log: Logger): FaultTable {
  const rules = new Map<string, Fault>();
  const ruleKey = (symbol: string | undefined, client: string | undefined) =>
    JSON.stringify([symbol ?? null, client ?? null]);

  return {
    set(f: Fault): void {
      const parsed = faultSchema.safeParse(f);
      if (!parsed.success) throw new Error(parsed.error.issues.map((i) => i.message).join('; '));
      let symbol: string | undefined;
      if (parsed.data.symbol !== undefined) {
        symbol = resolveSymbol(parsed.data.symbol, pairs)?.symbol;
        if (symbol === undefined) throw new Error(`"${parsed.data.symbol}" is not a symbol`);
      }
      const key = ruleKey(symbol, parsed.data.client);
      if (!rules.has(key) && rules.size >= MAX_FAULTS)
        throw new Error(`at most ${MAX_FAULTS} faults at a time`);
      const fault: Fault = { mode: parsed.data.mode };
      if (symbol !== undefined) fault.symbol = symbol;
      if (parsed.data.client !== undefined) fault.client = parsed.data.client;
      rules.set(key, fault);
      log.info({ fault }, 'market fault set');
    },
    clear(): void {
      rules.clear();
      log.info('market faults cleared');
    },
    list: () => [...rules.values()],
    modeFor(symbol: string | undefined, client: string): FaultMode | undefined {
      const keys = [
        ...(symbol !== undefined && client !== '' ? [ruleKey(symbol, client)] : []),
        ...(symbol !== undefined ? [ruleKey(symbol, undefined)] : []),
        ...(client !== '' ? [ruleKey(undefined, client)] : []),
        ruleKey(undefined, undefined),
      ];
      for (const k of keys) {
        const r = rules.get(k);
        if (r) return r.mode;
      }
      return undefined;
    },
  };
}

/** The price of a quote or ticker as a fault makes it; `undefined`: no price field. */
export interface PriceView {
  price: number | undefined;
  /** Shown as is instead of the number (nan). */
  text?: string;
  timeMs: number;
}

/** What a quote or ticker says at `t` under `mode` (price faults only). */
export function priceView(pair: string, mode: FaultMode | undefined, t: number): PriceView {
  const price = marketPrice(pair, t);
  switch (mode) {
    case 'missing':
      return { price: undefined, timeMs: t };
    case 'nan':
      return { price: NaN, text: 'NaN', timeMs: t };
    case 'negative':
      return { price: -price, timeMs: t };
    case 'zero':
      return { price: 0, timeMs: t };
    case 'stale':
      return { price: marketPrice(pair, t - STALE_MS), timeMs: t - STALE_MS };
    default:
      return { price, timeMs: t };
  }
}
