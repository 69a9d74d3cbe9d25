/**
 * A small market for tests and the demo: the simulated market of ../node/prices.ts served
 * the way real price vendors serve theirs, over HTTP (one quote per request) and WebSocket
 * (subscribe, then pushed tickers), with faults that can be switched on per symbol and per
 * client to see how nodes cope with a failing upstream. Not one of the product programs.
 *
 *   GET  /v1/quote/{symbol}?client=ID  -> {"symbol":"USDHKD","price":"7.812345","time":"<RFC 3339>"}
 *   WS   /v1/stream?client=ID          <- {"op":"subscribe","symbol":"USDHKD"} (or unsubscribe)
 *                                      -> {"op":"subscribed","subscription":"USDHKD"}, then every tick
 *                                         {"type":"ticker","symbol":"USDHKD","price":7.812345,"time":"..."}
 *   POST   /control/faults {"symbol"?, "client"?, "mode"} (no symbol: every symbol; no client:
 *          every client); DELETE /control/faults clears them all; GET lists them.
 *   GET  /healthz -> ok
 *
 * A symbol is BASEQUOTE (USDHKD), BASE_QUOTE or BASE-QUOTE, any case; answers always name it
 * BASEQUOTE. A symbol without a separator is split as a known pair (`pairs`) if one matches,
 * else after its first three characters. The price is `marketPrice(pair, now())`: the same
 * number a simulated node would stream at that moment.
 *
 * Bounded: one tick timer per server, request and message sizes capped, subscriptions per
 * connection capped, slow WebSocket readers skipped; close() ends every socket and timer.
 * The control endpoints have no authentication: run it only where that is fine (tests, a demo).
 */
import { type Server, createServer } from 'node:http';
import type { Socket } from 'node:net';
import { type Logger, silentLogger } from '../shared/logger';
import { HUGE_BYTES, type MarketContext } from './context';
import { type Fault, createFaultTable } from './faults';
import { createHttpRoutes } from './http-routes';
import { KNOWN_PAIRS } from './symbols';
import { createMarketStream } from './ws-stream';

// The market's parts, by job: symbols.ts (symbol -> pair), faults.ts (the fault table and
// the price under a fault), http-routes.ts (quotes, control, health), ws-stream.ts (the
// WebSocket stream). This file starts and closes them.

export interface MarketServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) lets the OS pick a free port. */
  port?: number;
  /** Interval of the WebSocket tickers, ms; default 1000. */
  tickMs?: number;
  /** The market's clock (ms since the epoch); default Date.now. */
  now?: () => number;
  logger?: Logger;
  /** Pairs that split a symbol without a separator (default: KNOWN_PAIRS). */
  pairs?: readonly string[];
  /** Size of a `huge` body or message; default HUGE_BYTES (tests may make it smaller). */
  hugeBytes?: number;
}

export interface MarketServer {
  readonly port: number;
  /** http://host:port */
  readonly url: string;
  /** ws://host:port/v1/stream */
  readonly wsUrl: string;
  /** Sets a fault (a later one for the same symbol and client replaces it). */
  setFault(f: Fault): void;
  clearFaults(): void;
  faults(): Fault[];
  /** Open TCP connections (HTTP and WebSocket). */
  connections(): number;
  /** Market requests so far: quote requests and WebSocket connection attempts. */
  requests(): number;
  /** Ends every connection, request and timer. Idempotent. */
  close(): Promise<void>;
}

export async function startMarketServer(opts: MarketServerOptions = {}): Promise<MarketServer> {
  const host = opts.host ?? '127.0.0.1';
  const tickMs = opts.tickMs ?? 1000;
  if (!Number.isInteger(tickMs) || tickMs < 1) throw new Error('tickMs must be a positive integer');
  const log = opts.logger ?? silentLogger();
  const pairs = opts.pairs ?? KNOWN_PAIRS;

  const faults = createFaultTable(pairs, log);
  const sockets = new Set<Socket>();
  let requestCount = 0;
  let closing = false;
  let closed: Promise<void> | undefined;

  const ctx: MarketContext = {
    now: opts.now ?? Date.now,
    log,
    pairs,
    hugeBytes: opts.hugeBytes ?? HUGE_BYTES,
    faults,
    closing: () => closing,
    countRequest: () => void requestCount++,
  };
  const stream = createMarketStream(ctx, tickMs);

  const server: Server = createServer(createHttpRoutes(ctx));
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('upgrade', stream.onUpgrade);
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const urlHost =
    host === '0.0.0.0'
      ? '127.0.0.1'
      : host === '::'
        ? '[::1]'
        : host.includes(':')
          ? `[${host}]`
          : host;
  const url = `http://${urlHost}:${port}`;
  log.info({ url, tick_ms: tickMs }, 'market listening');

  return {
    port,
    url,
    wsUrl: `ws://${urlHost}:${port}/v1/stream`,
    setFault: (f) => faults.set(f),
    clearFaults: () => faults.clear(),
    faults: () => faults.list(),
    connections: () => sockets.size,
    requests: () => requestCount,
    close: () => {
      closed ??= (async () => {
        closing = true;
        stream.close();
        const done = [
          new Promise<void>((resolve) => server.close(() => resolve())),
          ...[...sockets].map((s) => new Promise<void>((resolve) => s.once('close', resolve))),
        ];
        for (const s of sockets) s.destroy();
        await Promise.all(done);
        log.info('market closed');
      })();
      return closed;
    },
  };
}
