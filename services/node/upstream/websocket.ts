/**
 * NODE_UPSTREAM=websocket: one WebSocket connection per node (the `ws` package), prices
 * pushed by the upstream and routed to pairs by the symbol at NODE_UPSTREAM_SYMBOL_PATH.
 *
 * - The connection is opened when the first pair is followed and closed when none is.
 *   Each (re)connect sends the headers file as it is then (a rotated key applies from the
 *   next connect) and the subscribe message of every followed pair.
 * - A failed connection (refused, reset, handshake timeout, a non-101 answer, closed
 *   mid-stream, a message over the cap, silent for NODE_UPSTREAM_FAIL_AFTER_MS) is one
 *   failure per followed pair, then a reconnect after a capped, jittered backoff that
 *   starts again once a connection has delivered a valid quote.
 * - Every timer goes through the injected scheduler; after close() no event fires.
 * Details are safe to log: no header value, the URL without its query string.
 */
import * as tls from 'node:tls';
import WebSocket from 'ws';
import type { Logger } from '../../shared/logger';
import type { Random, Scheduler, TimerHandle } from '../../shared/scheduler';
import { type BackoffPolicy, backoffDelayMs } from '../../shared/backoff';
import type { UpstreamConfig } from './config';
import { type PairVars, pairVars, quoteFor } from './extract';
import { HeadersFile } from './headers-file';
import { limitedLog } from './log-limit';
import { MessagePacer } from './pacing';
import { redact, safeUrl } from './safe-detail';
import type { ReadOutcome, Upstream, UpstreamEvents } from './types';
import { closedByServer, socketError, unexpectedResponse } from './ws-failures';
import {
  pairsNamed,
  sharesSubscription,
  subscribeMessage,
  textOf,
  unsubscribeMessage,
} from './ws-messages';

// By job: ./ws-messages.ts (subscribe messages, which pairs a message is for),
// ./ws-failures.ts (a failed connection as an outcome), ./pacing.ts (NODE_UPSTREAM_MAX_RPS
// between messages), ./log-limit.ts; this file is the connection's life: connect, failure,
// backoff and reconnect, idle and ping timers, follow, unfollow and close.

export interface WebSocketUpstreamDeps {
  scheduler: Scheduler;
  random: Random;
  log: Logger;
  backoff?: BackoffPolicy;
}

export const WEBSOCKET_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000 };
/** The least time between two pings (a quiet server's socket is kept alive by the pongs). */
const MIN_PING_MS = 1000;

type Failure = Exclude<ReadOutcome, 'ok'>;

/** One connection attempt, from `new WebSocket` to its 'close' event. */
interface Conn {
  ws: WebSocket;
  startedAtMs: number;
  open: boolean;
  /** Failed or ended on purpose: it reports nothing more and handles no message. */
  done: boolean;
  /** Delivered at least one valid quote (the backoff starts again after it). */
  delivered: boolean;
  /** Subscribe messages sent on this connection (a symbol shared by pairs is sent once). */
  sent: Set<string>;
  /** Header values sent on the handshake, kept out of every detail. */
  secrets: string[];
  lastTrafficMs: number;
  /** Subscribe and unsubscribe messages, spaced by NODE_UPSTREAM_MAX_RPS. */
  pacer: MessagePacer;
  idleTimer?: TimerHandle;
  pingTimer?: TimerHandle;
  killTimer?: TimerHandle;
  closed: Promise<void>;
  markClosed: () => void;
}

export function createWebSocketUpstream(
  config: UpstreamConfig,
  events: UpstreamEvents,
  deps: WebSocketUpstreamDeps,
): Upstream {
  const { scheduler, random, log } = deps;
  const policy = deps.backoff ?? WEBSOCKET_BACKOFF;
  const shownUrl = safeUrl(config.url);
  const pingEveryMs = Math.max(MIN_PING_MS, Math.floor(config.failAfterMs / 3));

  const logLimited = limitedLog(log, () => scheduler.now(), {
    upstream: 'websocket',
    url: shownUrl,
  });

  const headersFile =
    config.headersFile === undefined
      ? undefined
      : new HeadersFile(config.headersFile, scheduler.now, (problem) => {
          if (problem === undefined)
            log.info({ upstream: 'websocket' }, 'upstream headers file is readable again');
          else log.warn({ upstream: 'websocket', problem }, 'upstream headers file');
        });

  const followed = new Map<string, PairVars>();
  /** Every connection whose 'close' has not come yet (the current one and those ending). */
  const live = new Set<Conn>();
  let current: Conn | undefined;
  let attempt = 0;
  let reconnectTimer: TimerHandle | undefined;
  let connectSoon: TimerHandle | undefined;
  let closed = false;

  const subscribe = (conn: Conn, vars: PairVars) => {
    const message = subscribeMessage(config, vars);
    if (message === undefined || conn.sent.has(message)) return;
    conn.sent.add(message);
    conn.pacer.send(message);
  };

  const failAll = (outcome: Failure, detail: string) => {
    if (closed) return;
    for (const pair of followed.keys()) events.failure(pair, outcome, detail);
  };

  const clearConnTimers = (conn: Conn) => {
    if (conn.idleTimer !== undefined) scheduler.clearTimeout(conn.idleTimer);
    if (conn.pingTimer !== undefined) scheduler.clearTimeout(conn.pingTimer);
    conn.idleTimer = undefined;
    conn.pingTimer = undefined;
    conn.pacer.stop();
  };

  /**
   * Ends a connection that is no longer used: a graceful close (so the unsubscribe and
   * the close frame reach the server) is cut short after the timeout; anything else is
   * terminated at once.
   */
  const retire = (conn: Conn, graceful: boolean) => {
    conn.done = true;
    clearConnTimers(conn);
    if (current === conn) current = undefined;
    const state = conn.ws.readyState;
    if (state === WebSocket.CLOSED) return;
    if ((graceful && state === WebSocket.OPEN) || state === WebSocket.CLOSING) {
      if (state === WebSocket.OPEN) conn.ws.close(1000, 'no pair followed');
      if (conn.killTimer === undefined)
        conn.killTimer = scheduler.setTimeout(() => {
          conn.killTimer = undefined;
          conn.ws.terminate();
        }, config.timeoutMs);
      return;
    }
    conn.ws.terminate();
  };

  const scheduleReconnect = () => {
    if (closed || followed.size === 0 || current || reconnectTimer || connectSoon) return;
    const delayMs = backoffDelayMs(attempt, policy, random);
    attempt++;
    reconnectTimer = scheduler.setTimeout(() => {
      reconnectTimer = undefined;
      connect();
    }, delayMs);
  };

  /** The connection failed: once per attempt, a failure for every followed pair. */
  const fail = (conn: Conn, outcome: Failure, detail: string) => {
    if (conn.done) return;
    const safe = redact(detail, conn.secrets);
    retire(conn, false);
    failAll(outcome, safe);
    if (closed) return;
    scheduleReconnect();
    logLimited(
      'warn',
      `fail:${outcome}`,
      { outcome, detail: safe, attempt },
      'upstream connection failed; reconnecting',
    );
  };

  const armIdle = (conn: Conn) => {
    const dueMs = conn.lastTrafficMs + config.failAfterMs - scheduler.now();
    conn.idleTimer = scheduler.setTimeout(
      () => {
        conn.idleTimer = undefined;
        if (conn.done) return;
        if (scheduler.now() - conn.lastTrafficMs >= config.failAfterMs)
          fail(conn, 'timeout', `no message from ${shownUrl} for ${config.failAfterMs} ms`);
        else armIdle(conn);
      },
      Math.max(1, dueMs),
    );
  };

  const armPing = (conn: Conn) => {
    conn.pingTimer = scheduler.setTimeout(() => {
      conn.pingTimer = undefined;
      if (conn.done || conn.ws.readyState !== WebSocket.OPEN) return;
      try {
        conn.ws.ping();
      } catch {
        // The socket is ending; its 'close' reports it.
      }
      armPing(conn);
    }, pingEveryMs);
  };

  const onText = (conn: Conn, text: string) => {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      logLimited('debug', 'invalid_json', { bytes: text.length }, 'upstream message is not JSON');
      failAll('invalid_json', 'a message that is not JSON');
      return;
    }
    const now = scheduler.now();
    for (const [pair, vars] of pairsNamed(doc, config.symbolPath, followed)) {
      const got = quoteFor(doc, config, vars, now);
      if (closed || conn.done) return;
      if (got.ok) {
        if (!conn.delivered) {
          conn.delivered = true;
          attempt = 0;
        }
        events.quote(pair, got.quote);
      } else if (got.outcome !== 'no_price') {
        events.failure(pair, got.outcome, got.detail);
      }
      // A message that names the pair but carries no price (a heartbeat, another event
      // type on the same stream) is no answer at all: neither a price nor a failure.
    }
  };

  const connect = () => {
    if (closed || followed.size === 0 || current) return;
    const headers = { ...(headersFile?.current() ?? {}) };
    const secrets = Object.values(headers);
    let markClosed!: () => void;
    const closedPromise = new Promise<void>((resolve) => (markClosed = resolve));
    let ws: WebSocket;
    try {
      ws = new WebSocket(config.url, {
        headers,
        ...(config.ca !== undefined ? { ca: [...tls.rootCertificates, config.ca] } : {}),
        handshakeTimeout: config.timeoutMs,
        maxPayload: config.maxBodyBytes,
        followRedirects: false,
      });
    } catch (err) {
      const detail = redact(`${shownUrl}: ${(err as Error).message}`, secrets);
      failAll('network', detail);
      scheduleReconnect();
      logLimited('warn', 'fail:network', { outcome: 'network', detail }, 'upstream connect failed');
      return;
    }
    const conn: Conn = {
      ws,
      startedAtMs: scheduler.now(),
      open: false,
      done: false,
      delivered: false,
      sent: new Set(),
      secrets,
      lastTrafficMs: scheduler.now(),
      pacer: new MessagePacer(scheduler, config.maxRps, (message) =>
        ws.send(message, (err) => {
          if (err)
            logLimited('debug', 'send', { error: redact(err.message, secrets) }, 'send failed');
        }),
      ),
      closed: closedPromise,
      markClosed,
    };
    current = conn;
    live.add(conn);

    ws.on('open', () => {
      if (conn.done || closed) return;
      conn.open = true;
      conn.lastTrafficMs = scheduler.now();
      events.latency?.((scheduler.now() - conn.startedAtMs) / 1000);
      logLimited('info', 'open', {}, 'upstream connected');
      armIdle(conn);
      armPing(conn);
      for (const vars of followed.values()) subscribe(conn, vars);
    });
    const traffic = () => {
      conn.lastTrafficMs = scheduler.now();
    };
    ws.on('pong', traffic);
    ws.on('ping', traffic);
    ws.on('message', (data, isBinary) => {
      if (conn.done || closed) return;
      traffic();
      if (isBinary) {
        logLimited('debug', 'binary', {}, 'upstream sent a binary message');
        failAll('invalid_json', 'a binary message; expected JSON text');
        return;
      }
      onText(conn, textOf(data));
    });
    ws.on('unexpected-response', (_req, res) => {
      const f = unexpectedResponse(shownUrl, res.statusCode ?? 0);
      fail(conn, f.outcome, f.detail);
      res.resume();
    });
    ws.on('error', (err: Error & { code?: string }) => {
      const f = socketError(err, shownUrl, config);
      fail(conn, f.outcome, f.detail);
    });
    ws.on('close', (code) => {
      if (conn.killTimer !== undefined) scheduler.clearTimeout(conn.killTimer);
      conn.killTimer = undefined;
      clearConnTimers(conn);
      live.delete(conn);
      if (!conn.done) {
        const f = closedByServer(shownUrl, conn.open, code);
        fail(conn, f.outcome, f.detail);
      }
      conn.markClosed();
    });
  };

  return {
    kind: 'websocket',

    waiting(pair: string): boolean {
      const vars = followed.get(pair);
      if (closed || vars === undefined) return false;
      // About to connect, or connecting (a failed attempt is reported, and ends this).
      if (connectSoon !== undefined) return true;
      if (!current || current.done) return false;
      if (!current.open) return true;
      const message = subscribeMessage(config, vars);
      return message !== undefined && current.pacer.waiting(message);
    },

    follow(pair: string): void {
      if (closed || followed.has(pair)) return;
      const vars = pairVars(pair, config.symbolTemplate, config.symbols);
      followed.set(pair, vars);
      if (current?.open && !current.done) subscribe(current, vars);
      else if (!current && !reconnectTimer && !connectSoon)
        // Not at once: no event may fire synchronously from follow().
        connectSoon = scheduler.setImmediate(() => {
          connectSoon = undefined;
          connect();
        });
    },

    unfollow(pair: string): void {
      const vars = followed.get(pair);
      if (closed || vars === undefined) return;
      followed.delete(pair);
      const conn = current;
      if (conn?.open && !conn.done && !sharesSubscription(config, vars, followed.values())) {
        const unsub = unsubscribeMessage(config, vars);
        const sub = subscribeMessage(config, vars);
        if (unsub !== undefined) conn.pacer.send(unsub);
        if (sub !== undefined) conn.sent.delete(sub);
      }
      if (followed.size > 0) return;
      // None followed any more: no connection, and a later follow starts afresh.
      attempt = 0;
      if (reconnectTimer !== undefined) scheduler.clearTimeout(reconnectTimer);
      if (connectSoon !== undefined) scheduler.clearImmediate(connectSoon);
      reconnectTimer = connectSoon = undefined;
      // Messages still waiting for their turn go now: the connection ends right after.
      if (conn?.open && !conn.done) conn.pacer.flush();
      if (conn) retire(conn, true);
    },

    async close(): Promise<void> {
      closed = true;
      if (reconnectTimer !== undefined) scheduler.clearTimeout(reconnectTimer);
      if (connectSoon !== undefined) scheduler.clearImmediate(connectSoon);
      reconnectTimer = connectSoon = undefined;
      current = undefined;
      const ending = [...live].map((conn) => {
        conn.done = true;
        clearConnTimers(conn);
        if (conn.killTimer !== undefined) scheduler.clearTimeout(conn.killTimer);
        conn.killTimer = undefined;
        conn.ws.terminate();
        return conn.closed;
      });
      await Promise.all(ending);
    },
  };
}
