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
import type { Logger } from '../../shared/logger';
import type { Random, Scheduler, TimerHandle } from '../../shared/scheduler';
import { appVersion } from '../../shared/version';
import type { UpstreamConfig } from './config';
import {
  type Failure,
  type FlightSignal,
  type Result,
  createAgent,
  fetchQuote,
  requestHeaders,
} from './http-fetch';
import { ReadLimiter } from './http-rate-limit';
import { HeadersFile } from './headers-file';
import type { Upstream, UpstreamEvents } from './types';

// By job: ./http-fetch.ts (one read: request, redirects, body cap, outcomes),
// ./http-rate-limit.ts (token bucket, queue, Retry-After pause), this file (reads in flight,
// their deadline and events, unfollow and close).

export interface HttpUpstreamDeps {
  scheduler: Scheduler;
  random: Random;
  log: Logger;
}

/** One read from its token to its event. */
interface Flight extends FlightSignal {
  pair: string;
  timer?: TimerHandle;
  done: Promise<void>;
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
  const agent = createAgent(config);
  const userAgent = `currency-node/${appVersion()}`;

  const flights = new Set<Flight>();
  const immediates = new Set<TimerHandle>();
  let closed = false;
  let closing: Promise<void> | undefined;

  /** A failure reported from its own turn of the event loop (never from inside read()). */
  function failSoon(pair: string, outcome: Failure, detail: string): void {
    const h = scheduler.setImmediate(() => {
      immediates.delete(h);
      if (!closed) events.failure(pair, outcome, detail);
    });
    immediates.add(h);
  }

  const limiter = new ReadLimiter({
    scheduler,
    maxRps: config.maxRps,
    start,
    refuse: (pair, detail) => failSoon(pair, 'rate_limited', detail),
  });
  const fetchDeps = {
    config,
    scheduler,
    agent,
    headers: () => requestHeaders(userAgent, headersFile),
    observeLatency,
    retryAfter: (status: number, header: string | string[] | undefined) =>
      limiter.retryAfter(status, header),
  };

  function start(pair: string): void {
    const controller = new AbortController();
    const flight: Flight = { pair, controller, done: Promise.resolve() };
    flight.timer = scheduler.setTimeout(() => {
      flight.timer = undefined;
      flight.abortedBy ??= 'timeout';
      controller.abort(new Error('timeout'));
    }, config.timeoutMs);
    flights.add(flight);
    flight.done = fetchQuote(pair, flight, fetchDeps)
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

  return {
    kind: 'http',
    read(pair: string): void {
      if (closed) return;
      limiter.read(pair);
    },
    follow(): void {},
    unfollow(pair: string): void {
      limiter.drop(pair);
      for (const f of flights)
        if (f.pair === pair && f.abortedBy === undefined) {
          f.abortedBy = 'unfollow';
          f.controller.abort(new Error('unfollowed'));
        }
    },
    close(): Promise<void> {
      closing ??= (async () => {
        closed = true;
        limiter.close();
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
