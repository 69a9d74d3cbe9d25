/**
 * The `http` upstream (contract: NODE_UPSTREAM=http): one GET of the pair's URL per
 * `read(pair)`, the price taken out of the JSON body (./extract.ts). Every read reports
 * exactly one event, a quote or a failure with its outcome, unless the pair was
 * unfollowed meanwhile, the read was dropped by the same-pair rule of the rate-limit
 * queue, or the upstream was closed.
 *
 * - HTTP is undici's, through one Agent per upstream (extra CAs from
 *   NODE_UPSTREAM_CA_FILE are trusted beside the system's roots).
 * - One deadline (NODE_UPSTREAM_TIMEOUT_MS) covers connect, redirects, headers and body.
 * - Bodies are counted as they stream and the request is aborted past the cap; a larger
 *   Content-Length is refused before a byte of the body is read.
 * - Redirects are followed by hand: at most 3, and only within the URL's origin.
 * - 429, 503 and 418 (a temporary ban) honour Retry-After by pausing every request of this upstream (at most
 *   10 minutes); reads asked for meanwhile fail at once.
 * - A token bucket (NODE_UPSTREAM_MAX_RPS) spaces requests across all pairs; a read that
 *   finds no token waits in a FIFO queue holding at most one read per pair.
 * events.latency is one observation per HTTP request that got an answer (each redirect hop
 * is one), from sending it to the end of its body or to giving it up; a timeout or a
 * network failure has none.
 * Failure details name the URL's origin and path only (API keys sometimes sit in query
 * strings) and never a header value.
 */
import tls from 'node:tls';
import { Agent, request } from 'undici';
import type { Logger } from '../../shared/logger';
import type { Random, Scheduler, TimerHandle } from '../../shared/scheduler';
import { appVersion } from '../../shared/version';
import type { UpstreamConfig } from './config';
import { MAX_FUTURE_MS, describe, extractQuote, fillTemplate, getPath, pairVars } from './extract';
import { HeadersFile } from './headers-file';
import type { Quote, ReadOutcome, Upstream, UpstreamEvents } from './types';

export interface HttpUpstreamDeps {
  scheduler: Scheduler;
  random: Random;
  log: Logger;
}

/** Redirects followed for one read; one more is the outcome 'redirect'. */
export const MAX_REDIRECTS = 3;
/** The longest pause a Retry-After can ask for. */
export const MAX_PAUSE_MS = 10 * 60 * 1000;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

type Failure = Exclude<ReadOutcome, 'ok'>;
type Result = { ok: true; quote: Quote } | { ok: false; outcome: Failure; detail: string };

/** One read from its token to its event. */
interface Flight {
  pair: string;
  controller: AbortController;
  /** Why it was aborted: the deadline, an unfollow, or close(). */
  abortedBy?: 'timeout' | 'unfollow' | 'close';
  timer?: TimerHandle;
  done: Promise<void>;
}

/** `origin + path` of a URL: what details and logs may show of it. */
export function safeUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/**
 * Retry-After as a wait in ms from `nowMs`: delta seconds or an HTTP date; undefined if
 * absent or unreadable, 0 if already past.
 */
export function retryAfterMs(
  value: string | string[] | undefined,
  nowMs: number,
): number | undefined {
  const raw = (Array.isArray(value) ? value[0] : value)?.trim();
  if (raw === undefined || raw === '') return undefined;
  if (/^\d+$/.test(raw)) return Number(raw) * 1000;
  const at = Date.parse(raw);
  if (!Number.isFinite(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/** Milliseconds as seconds with one decimal, rounded up (a pause of 1 ms is 0.1 s, not 0.0). */
function seconds(ms: number): string {
  return (Math.ceil(ms / 100) / 10).toFixed(1);
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function createHttpUpstream(
  config: UpstreamConfig,
  events: UpstreamEvents,
  deps: HttpUpstreamDeps,
): Upstream {
  const { scheduler, log } = deps;
  const headersFile =
    config.headersFile === undefined
      ? undefined
      : new HeadersFile(config.headersFile, scheduler.now, (problem) => {
          // The problem names the file and the line, never a value.
          if (problem !== undefined)
            log.warn({ headers_file: config.headersFile }, `upstream headers file: ${problem}`);
          else log.info({ headers_file: config.headersFile }, 'upstream headers file read again');
        });
  // Made after the headers file, which throws if it cannot be read.
  const agent = new Agent(
    config.ca !== undefined ? { connect: { ca: [...tls.rootCertificates, config.ca] } } : {},
  );
  const userAgent = `currency-node/${appVersion()}`;

  // Token bucket over scheduler.now().
  const burst = Math.max(1, Math.ceil(config.maxRps));
  let tokens = burst;
  let refilledAtMs = scheduler.now();
  /** Reads waiting for a token, oldest first; at most one per pair. */
  const queue: string[] = [];
  let drainTimer: TimerHandle | undefined;

  /** Retry-After: no request before this time (ms since the epoch). */
  let pausedUntilMs = 0;
  let pauseStatus = 0;

  const flights = new Set<Flight>();
  const immediates = new Set<TimerHandle>();
  let closed = false;
  let closing: Promise<void> | undefined;

  function refill(): void {
    const now = scheduler.now();
    if (now > refilledAtMs) {
      tokens = Math.min(burst, tokens + ((now - refilledAtMs) / 1000) * config.maxRps);
      refilledAtMs = now;
    }
  }

  function pauseLeftMs(): number {
    return Math.max(0, pausedUntilMs - scheduler.now());
  }

  function pausedDetail(left: number): string {
    return `the upstream answered ${pauseStatus} with Retry-After; requests are paused for another ${seconds(left)} s`;
  }

  /** A failure reported from its own turn of the event loop (never from inside read()). */
  function failSoon(pair: string, outcome: Failure, detail: string): void {
    const h = scheduler.setImmediate(() => {
      immediates.delete(h);
      if (!closed) events.failure(pair, outcome, detail);
    });
    immediates.add(h);
  }

  function scheduleDrain(): void {
    if (drainTimer !== undefined || queue.length === 0 || closed) return;
    const waitMs = Math.max(1, Math.ceil(((1 - tokens) * 1000) / config.maxRps));
    drainTimer = scheduler.setTimeout(drain, waitMs);
  }

  function drain(): void {
    drainTimer = undefined;
    if (closed) return;
    const left = pauseLeftMs();
    if (left > 0) {
      // Paused since these reads were queued: they fail like reads asked for now.
      for (const pair of queue.splice(0)) failSoon(pair, 'rate_limited', pausedDetail(left));
      return;
    }
    refill();
    // Bounded: each pass takes one queued read (the queue holds at most one per pair).
    while (queue.length > 0 && tokens >= 1) {
      tokens -= 1;
      start(queue.shift()!);
    }
    scheduleDrain();
  }

  function start(pair: string): void {
    const controller = new AbortController();
    const flight: Flight = { pair, controller, done: Promise.resolve() };
    flight.timer = scheduler.setTimeout(() => {
      flight.timer = undefined;
      flight.abortedBy ??= 'timeout';
      controller.abort(new Error('timeout'));
    }, config.timeoutMs);
    flights.add(flight);
    flight.done = fetchQuote(pair, flight)
      .catch((err: unknown): Result => ({
        ok: false,
        outcome: 'network',
        detail: `unexpected error: ${(err as Error).message}`,
      }))
      .then((result) => {
        if (flight.timer !== undefined) scheduler.clearTimeout(flight.timer);
        flights.delete(flight);
        if (closed || flight.abortedBy === 'unfollow' || flight.abortedBy === 'close') return;
        if (result.ok) events.quote(pair, result.quote);
        else events.failure(pair, result.outcome, result.detail);
      })
      .catch((err: unknown) => {
        log.error({ err, pair }, 'upstream event handler threw');
      });
  }

  function observeLatency(startedAtMs: number): void {
    if (!closed) events.latency?.(Math.max(0, scheduler.now() - startedAtMs) / 1000);
  }

  function requestHeaders(): Record<string, string> {
    const out: Record<string, string> = { accept: 'application/json', 'user-agent': userAgent };
    // The file's headers win over the defaults (an API may want its own Accept).
    if (headersFile !== undefined)
      for (const [name, value] of Object.entries(headersFile.current()))
        out[name.toLowerCase()] = value;
    return out;
  }

  /** A request error as an outcome; the detail holds no URL query and no header. */
  function errorResult(err: unknown, flight: Flight, url: URL): Result {
    if (flight.abortedBy === 'timeout')
      return {
        ok: false,
        outcome: 'timeout',
        detail: `no complete answer from ${safeUrl(url)} within ${config.timeoutMs} ms`,
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

  async function fetchQuote(pair: string, flight: Flight): Promise<Result> {
    const vars = pairVars(pair, config.symbolTemplate, config.symbols);
    let url = new URL(fillTemplate(config.url, vars, encodeURIComponent));
    const headers = requestHeaders();
    const signal = flight.controller.signal;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const startedAtMs = scheduler.now();
      let res: Awaited<ReturnType<typeof request>>;
      try {
        res = await request(url, { dispatcher: agent, method: 'GET', headers, signal });
      } catch (err) {
        return errorResult(err, flight, url);
      }
      const status = res.statusCode;
      if (!(status >= 200 && status < 300)) {
        // Nothing of a body that is not a price is read: the connection just ends.
        res.body.destroy();
        observeLatency(startedAtMs);
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
        const waitMs = retryAfterMs(res.headers['retry-after'], scheduler.now());
        let pause = '';
        if (waitMs !== undefined && waitMs > 0) {
          const until = scheduler.now() + Math.min(waitMs, MAX_PAUSE_MS);
          if (until > pausedUntilMs) {
            pausedUntilMs = until;
            pauseStatus = status;
          }
          pause = `; requests paused for ${seconds(Math.min(waitMs, MAX_PAUSE_MS))} s (Retry-After)`;
        }
        return {
          ok: false,
          outcome: 'rate_limited',
          detail: `${status} from ${safeUrl(url)}${pause}`,
        };
      }
      if (!(status >= 200 && status < 300))
        return { ok: false, outcome: 'http_status', detail: `${status} from ${safeUrl(url)}` };
      return readBody(res, pair, vars, flight, url, startedAtMs);
    }
    // Unreachable: the last hop returns above.
    return { ok: false, outcome: 'redirect', detail: `more than ${MAX_REDIRECTS} redirects` };
  }

  async function readBody(
    res: Awaited<ReturnType<typeof request>>,
    pair: string,
    vars: ReturnType<typeof pairVars>,
    flight: Flight,
    url: URL,
    startedAtMs: number,
  ): Promise<Result> {
    const cap = config.maxBodyBytes;
    const length = Number(header(res.headers['content-length']));
    if (Number.isFinite(length) && length > cap) {
      res.body.destroy();
      observeLatency(startedAtMs);
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
          observeLatency(startedAtMs);
          return {
            ok: false,
            outcome: 'too_large',
            detail: `the body from ${safeUrl(url)} is over the cap of ${cap} bytes`,
          };
        }
        chunks.push(chunk);
      }
    } catch (err) {
      return errorResult(err, flight, url);
    }
    observeLatency(startedAtMs);
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
      if (
        (typeof got !== 'string' && typeof got !== 'number') ||
        String(got).toLowerCase() !== vars.symbol.toLowerCase()
      )
        return {
          ok: false,
          outcome: 'no_price',
          detail: `${symbolPath} is ${describe(got)}, not the symbol ${vars.symbol} of ${pair}`,
        };
    }
    const extracted = extractQuote(
      doc,
      {
        pricePath: fillTemplate(config.pricePath, vars),
        timePath: config.timePath === undefined ? undefined : fillTemplate(config.timePath, vars),
        maxAgeMs: config.maxAgeMs,
        maxFutureMs: MAX_FUTURE_MS,
      },
      scheduler.now(),
    );
    return extracted;
  }

  return {
    kind: 'http',
    read(pair: string): void {
      if (closed) return;
      const left = pauseLeftMs();
      if (left > 0) {
        failSoon(pair, 'rate_limited', pausedDetail(left));
        return;
      }
      // Same-pair rule: a read already waiting for this pair stands for this one too.
      if (queue.includes(pair)) return;
      refill();
      if (queue.length === 0 && tokens >= 1) {
        tokens -= 1;
        start(pair);
        return;
      }
      queue.push(pair);
      scheduleDrain();
    },
    follow(): void {},
    unfollow(pair: string): void {
      const at = queue.indexOf(pair);
      if (at >= 0) queue.splice(at, 1);
      for (const f of flights)
        if (f.pair === pair && f.abortedBy === undefined) {
          f.abortedBy = 'unfollow';
          f.controller.abort(new Error('unfollowed'));
        }
    },
    close(): Promise<void> {
      closing ??= (async () => {
        closed = true;
        queue.length = 0;
        if (drainTimer !== undefined) scheduler.clearTimeout(drainTimer);
        drainTimer = undefined;
        for (const h of immediates) scheduler.clearImmediate(h);
        immediates.clear();
        const pending = [...flights];
        for (const f of pending) {
          f.abortedBy ??= 'close';
          f.controller.abort(new Error('closed'));
        }
        await Promise.allSettled(pending.map((f) => f.done));
        await agent.destroy();
      })();
      return closing;
    },
  };
}
