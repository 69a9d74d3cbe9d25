/**
 * One read of the http kind, from its request to its result: the URL and headers built
 * for the pair, the request through the upstream's undici Agent, redirects followed by
 * hand (at most MAX_REDIRECTS, only within the URL's origin), a Retry-After handed to the
 * rate limiter, the body counted against NODE_UPSTREAM_MAX_BODY_BYTES, the price read out
 * of it, and every error turned into an outcome whose detail holds no query and no header.
 * The deadline itself is the caller's: it aborts `flight.controller`.
 */
import tls from 'node:tls';
import { Agent, request } from 'undici';
import type { Scheduler } from '../../shared/scheduler';
import type { UpstreamConfig } from './config';
import {
  type PairVars,
  describe,
  fillTemplate,
  getPath,
  pairVars,
  quoteFor,
  symbolMatches,
} from './extract';
import type { HeadersFile } from './headers-file';
import { safeUrl } from './safe-detail';
import type { Quote, ReadOutcome } from './types';

/** Redirects followed for one read; one more is the outcome 'redirect'. */
export const MAX_REDIRECTS = 3;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export type Failure = Exclude<ReadOutcome, 'ok'>;
export type Result = { ok: true; quote: Quote } | { ok: false; outcome: Failure; detail: string };

/** The part of a read in flight that the fetch looks at. */
export interface FlightSignal {
  controller: AbortController;
  /** Why it was aborted: the deadline, an unfollow, or close(). */
  abortedBy?: 'timeout' | 'unfollow' | 'close';
}

export interface FetchDeps {
  config: UpstreamConfig;
  scheduler: Scheduler;
  agent: Agent;
  /** The headers of every request (defaults, then the headers file's). */
  headers(): Record<string, string>;
  /** One HTTP request got an answer; it started at `startedAtMs`. */
  observeLatency(startedAtMs: number): void;
  /** A 429, 503 or 418: what the detail says of the pause its Retry-After asks for. */
  retryAfter(status: number, header: string | string[] | undefined): string;
}

/** The upstream's Agent: extra CAs from NODE_UPSTREAM_CA_FILE beside the system's roots. */
export function createAgent(config: UpstreamConfig): Agent {
  return new Agent(
    config.ca !== undefined ? { connect: { ca: [...tls.rootCertificates, config.ca] } } : {},
  );
}

/** The request headers: Accept and User-Agent, then the headers file's (those win). */
export function requestHeaders(
  userAgent: string,
  headersFile: HeadersFile | undefined,
): Record<string, string> {
  const out: Record<string, string> = { accept: 'application/json', 'user-agent': userAgent };
  // The file's headers win over the defaults (an API may want its own Accept).
  if (headersFile !== undefined)
    for (const [name, value] of Object.entries(headersFile.current()))
      out[name.toLowerCase()] = value;
  return out;
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** A request error as an outcome; the detail holds no URL query and no header. */
export function errorResult(
  err: unknown,
  flight: FlightSignal,
  url: URL,
  timeoutMs: number,
): Result {
  if (flight.abortedBy === 'timeout')
    return {
      ok: false,
      outcome: 'timeout',
      detail: `no complete answer from ${safeUrl(url)} within ${timeoutMs} ms`,
    };
  const e = err as { code?: string; message?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  if (
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  )
    return { ok: false, outcome: 'timeout', detail: `${code} from ${safeUrl(url)}` };
  let message = String(e.message ?? err);
  if (url.search !== '') message = message.split(url.search).join('?…');
  if (message.length > 200) message = `${message.slice(0, 200)}…`;
  return {
    ok: false,
    outcome: 'network',
    detail: `${safeUrl(url)}: ${code !== undefined ? `${code} ` : ''}${message}`,
  };
}

/** Reads the quote of `pair`: one request, or one per redirect hop. */
export async function fetchQuote(
  pair: string,
  flight: FlightSignal,
  deps: FetchDeps,
): Promise<Result> {
  const { config, scheduler, agent } = deps;
  const vars = pairVars(pair, config.symbolTemplate, config.symbols);
  let url = new URL(fillTemplate(config.url, vars, encodeURIComponent));
  const headers = deps.headers();
  const signal = flight.controller.signal;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const startedAtMs = scheduler.now();
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(url, { dispatcher: agent, method: 'GET', headers, signal });
    } catch (err) {
      return errorResult(err, flight, url, config.timeoutMs);
    }
    const status = res.statusCode;
    if (!(status >= 200 && status < 300)) {
      // Nothing of a body that is not a price is read: the connection just ends.
      res.body.destroy();
      deps.observeLatency(startedAtMs);
    }
    if (REDIRECT_STATUSES.has(status)) {
      const location = header(res.headers.location);
      let next: URL | undefined;
      try {
        next = location === undefined ? undefined : new URL(location, url);
      } catch {
        next = undefined;
      }
      if (next === undefined)
        return {
          ok: false,
          outcome: 'redirect',
          detail: `${status} from ${safeUrl(url)} without a usable Location`,
        };
      if (next.origin !== url.origin)
        return {
          ok: false,
          outcome: 'redirect',
          detail: `${status} from ${safeUrl(url)} to another origin (${next.origin}), not followed`,
        };
      if (hop === MAX_REDIRECTS)
        return {
          ok: false,
          outcome: 'redirect',
          detail: `more than ${MAX_REDIRECTS} redirects from ${safeUrl(url)}`,
        };
      url = next;
      continue;
    }
    // 418 is how some APIs (Binance) say "banned for now", with a Retry-After like 429's.
    if (status === 429 || status === 503 || status === 418) {
      const pause = deps.retryAfter(status, res.headers['retry-after']);
      return {
        ok: false,
        outcome: 'rate_limited',
        detail: `${status} from ${safeUrl(url)}${pause}`,
      };
    }
    if (!(status >= 200 && status < 300))
      return { ok: false, outcome: 'http_status', detail: `${status} from ${safeUrl(url)}` };
    return readBody(res, pair, vars, flight, url, startedAtMs, deps);
  }
  // Unreachable: the last hop returns above.
  return { ok: false, outcome: 'redirect', detail: `more than ${MAX_REDIRECTS} redirects` };
}

async function readBody(
  res: Awaited<ReturnType<typeof request>>,
  pair: string,
  vars: PairVars,
  flight: FlightSignal,
  url: URL,
  startedAtMs: number,
  deps: FetchDeps,
): Promise<Result> {
  const { config, scheduler } = deps;
  const cap = config.maxBodyBytes;
  const length = Number(header(res.headers['content-length']));
  if (Number.isFinite(length) && length > cap) {
    res.body.destroy();
    deps.observeLatency(startedAtMs);
    return {
      ok: false,
      outcome: 'too_large',
      detail: `${safeUrl(url)} announced ${length} bytes (Content-Length), over the cap of ${cap}`,
    };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    // Bounded: the loop ends with the body, past the cap, or at the deadline's abort.
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > cap) {
        res.body.destroy();
        deps.observeLatency(startedAtMs);
        return {
          ok: false,
          outcome: 'too_large',
          detail: `the body from ${safeUrl(url)} is over the cap of ${cap} bytes`,
        };
      }
      chunks.push(chunk);
    }
  } catch (err) {
    return errorResult(err, flight, url, config.timeoutMs);
  }
  deps.observeLatency(startedAtMs);
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.concat(chunks, size).toString('utf8'));
  } catch {
    const type = header(res.headers['content-type']);
    return {
      ok: false,
      outcome: 'invalid_json',
      detail: `the body from ${safeUrl(url)} (${size} bytes${type ? `, ${type.slice(0, 60)}` : ''}) is not JSON`,
    };
  }
  if (config.symbolPath !== undefined) {
    const symbolPath = fillTemplate(config.symbolPath, vars);
    const got = getPath(doc, symbolPath);
    if (!symbolMatches(got, vars))
      return {
        ok: false,
        outcome: 'no_price',
        detail: `${symbolPath} is ${describe(got)}, not the symbol ${vars.symbol} of ${pair}`,
      };
  }
  return quoteFor(doc, config, vars, scheduler.now());
}
