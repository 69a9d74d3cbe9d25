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
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex, Writable } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { z } from 'zod';
import { marketPrice } from '../node/prices';
import { type Logger, silentLogger } from '../shared/logger';

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

/** Pairs that split symbols like DOGEUSD correctly; others split after three characters. */
export const KNOWN_PAIRS: readonly string[] = [
  'USD_HKD',
  'USD_JPY',
  'USD_SGD',
  'USD_CHF',
  'USD_CAD',
  'EUR_USD',
  'GBP_USD',
  'AUD_USD',
  'BTC_USD',
  'ETH_USD',
  'ETH_BTC',
  'SOL_USD',
  'XAU_USD',
  'DOGE_USD',
  'BTC_USDT',
  'ETH_USDT',
];

export const HUGE_BYTES = 50 * 1024 * 1024;
export const STALE_MS = 60 * 60_000;
export const RETRY_AFTER_S = 2;
const CHUNK_BYTES = 64 * 1024;
const MAX_CONTROL_BODY = 16 * 1024;
const MAX_WS_MESSAGE = 16 * 1024;
const MAX_SUBSCRIPTIONS = 256;
const MAX_FAULTS = 1024;
/** A WebSocket reader this far behind is skipped until it catches up. */
const MAX_WS_BUFFERED = 1024 * 1024;
/** Messages held per connection while a huge message goes out; more are dropped. */
const MAX_WS_QUEUED = 64;
const SYMBOL_RE = /^[A-Z0-9]{1,16}(?:[_\-/][A-Z0-9]{1,16})?$/;

const HTML_PAGE =
  '<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>' +
  '<body><h1>502 Bad Gateway</h1><p>The upstream market is unavailable.</p></body></html>\n';

export interface ResolvedSymbol {
  /** BASEQUOTE, as answers name it. */
  symbol: string;
  /** BASE_QUOTE, as marketPrice takes it. */
  pair: string;
}

/** USDHKD, USD_HKD, usd-hkd -> {symbol: USDHKD, pair: USD_HKD}; undefined if not a symbol. */
export function resolveSymbol(
  raw: string,
  pairs: readonly string[] = KNOWN_PAIRS,
): ResolvedSymbol | undefined {
  const up = raw.trim().toUpperCase();
  if (!SYMBOL_RE.test(up)) return undefined;
  const sep = /[_\-/]/.exec(up);
  let pair: string | undefined;
  if (sep) pair = `${up.slice(0, sep.index)}_${up.slice(sep.index + 1)}`;
  else {
    pair = pairs.find((p) => p.replace('_', '') === up);
    if (pair === undefined && up.length > 3) pair = `${up.slice(0, 3)}_${up.slice(3)}`;
  }
  return pair === undefined ? undefined : { symbol: pair.replace('_', ''), pair };
}

const faultSchema = z.strictObject({
  symbol: z.string().min(1).max(40).optional(),
  client: z.string().min(1).max(200).optional(),
  mode: z.enum(FAULT_MODES, { message: `mode must be one of ${FAULT_MODES.join(', ')}` }),
});

/** The price of a quote or ticker as a fault makes it; `undefined`: no price field. */
interface PriceView {
  price: number | undefined;
  /** Shown as is instead of the number (nan). */
  text?: string;
  timeMs: number;
}

interface WsClient {
  ws: WebSocket;
  client: string;
  /** symbol -> pair */
  subs: Map<string, string>;
  /** A huge message is being sent: other messages wait in `queued` until it ends. */
  busy: boolean;
  queued: string[];
}

export async function startMarketServer(opts: MarketServerOptions = {}): Promise<MarketServer> {
  const host = opts.host ?? '127.0.0.1';
  const tickMs = opts.tickMs ?? 1000;
  if (!Number.isInteger(tickMs) || tickMs < 1) throw new Error('tickMs must be a positive integer');
  const now = opts.now ?? Date.now;
  const log = opts.logger ?? silentLogger();
  const pairs = opts.pairs ?? KNOWN_PAIRS;
  const hugeBytes = opts.hugeBytes ?? HUGE_BYTES;

  const rules = new Map<string, Fault>();
  const sockets = new Set<Socket>();
  const wsClients = new Set<WsClient>();
  let requestCount = 0;
  let closing = false;
  let closed: Promise<void> | undefined;

  const ruleKey = (symbol: string | undefined, client: string | undefined) =>
    JSON.stringify([symbol ?? null, client ?? null]);

  /** The most specific fault: symbol and client, then symbol, then client, then everything. */
  function faultFor(symbol: string | undefined, client: string): FaultMode | undefined {
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
  }

  function setFault(f: Fault): void {
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
  }

  function clearFaults(): void {
    rules.clear();
    log.info('market faults cleared');
  }

  /** What a quote or ticker says under `mode` (price faults only). */
  function priceView(pair: string, mode: FaultMode | undefined): PriceView {
    const t = now();
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

  // ---- HTTP ----

  function sendJson(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      ...headers,
    });
    res.end(text);
  }

  function quote(req: IncomingMessage, res: ServerResponse, url: URL, rawSymbol: string): void {
    requestCount++;
    const client = url.searchParams.get('client') ?? '';
    const resolved = resolveSymbol(rawSymbol, pairs);
    if (!resolved) {
      sendJson(res, 404, { error: `unknown symbol "${rawSymbol.slice(0, 40)}"` });
      return;
    }
    const { symbol, pair } = resolved;
    const mode = faultFor(symbol, client);
    log.debug({ symbol, client, fault: mode }, 'quote');
    switch (mode) {
      case 'http_500':
        sendJson(res, 500, { error: 'internal server error' });
        return;
      case 'timeout':
      case 'silent':
        // Never answered; the socket is destroyed when the client gives up or on close().
        return;
      case 'reset':
        req.socket.resetAndDestroy();
        return;
      case 'close':
        // The connection ends without an answer.
        req.socket.end();
        return;
      case 'rate_limit':
        sendJson(
          res,
          429,
          { error: 'rate limit exceeded' },
          { 'retry-after': String(RETRY_AFTER_S) },
        );
        return;
      case 'html':
        res.writeHead(502, {
          'content-type': 'text/html; charset=utf-8',
          'content-length': Buffer.byteLength(HTML_PAGE),
        });
        res.end(HTML_PAGE);
        return;
      case 'invalid_json': {
        const text = `{"symbol":"${symbol}","price":"${marketPrice(pair, now())}","ti`;
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
        return;
      }
      case 'huge':
        void streamHugeHttp(res, symbol, pair);
        return;
      default: {
        const v = priceView(pair, mode);
        const body: Record<string, string> = { symbol };
        if (v.price !== undefined) body.price = v.text ?? String(v.price);
        body.time = new Date(v.timeMs).toISOString();
        sendJson(res, 200, body);
      }
    }
  }

  /** A valid JSON document of about hugeBytes, in chunks, stopped when the client goes away. */
  async function streamHugeHttp(res: ServerResponse, symbol: string, pair: string): Promise<void> {
    const head = `{"symbol":"${symbol}","price":"${marketPrice(pair, now())}","time":"${new Date(now()).toISOString()}","padding":"`;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.write(head);
    const chunk = Buffer.alloc(CHUNK_BYTES, 'x');
    let sent = head.length;
    while (sent < hugeBytes && !res.destroyed && !closing) {
      const n = Math.min(CHUNK_BYTES, hugeBytes - sent);
      const ok = res.write(n === CHUNK_BYTES ? chunk : chunk.subarray(0, n));
      sent += n;
      if (!ok) await drained(res);
    }
    if (res.destroyed || closing) {
      log.info({ symbol, sent }, 'huge body stopped: the client went away');
      return;
    }
    res.end('"}');
    log.info({ symbol, sent }, 'huge body sent');
  }

  async function control(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'GET') {
      sendJson(res, 200, { faults: [...rules.values()] });
      return;
    }
    if (req.method === 'DELETE') {
      clearFaults();
      sendJson(res, 200, { faults: [] });
      return;
    }
    if (req.method !== 'POST') {
      sendJson(res, 405, { error: 'use GET, POST or DELETE' }, { allow: 'GET, POST, DELETE' });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req, MAX_CONTROL_BODY));
    } catch (err) {
      sendJson(res, 400, { error: `body: ${(err as Error).message}` });
      return;
    }
    try {
      setFault(body as Fault);
    } catch (err) {
      sendJson(res, 400, { error: (err as Error).message });
      return;
    }
    sendJson(res, 200, { faults: [...rules.values()] });
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://market');
    } catch {
      sendJson(res, 400, { error: 'bad request target' });
      return;
    }
    const m = /^\/v1\/quote\/([^/]+)$/.exec(url.pathname);
    if (m) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(res, 405, { error: 'use GET' }, { allow: 'GET' });
        return;
      }
      let raw: string;
      try {
        raw = decodeURIComponent(m[1]!);
      } catch {
        raw = m[1]!;
      }
      quote(req, res, url, raw);
      return;
    }
    if (url.pathname === '/control/faults') {
      control(req, res).catch((err: unknown) => {
        log.warn({ err }, 'control request failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else res.destroy();
      });
      return;
    }
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
      return;
    }
    sendJson(res, 404, { error: 'not found' });
  }

  // ---- WebSocket ----

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE });

  function rejectUpgrade(socket: Duplex, status: string, headers: string[], body: string): void {
    socket.end(
      [
        `HTTP/1.1 ${status}`,
        'Connection: close',
        `Content-Length: ${Buffer.byteLength(body)}`,
        ...headers,
        '',
        body,
      ].join('\r\n'),
    );
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://market');
    } catch {
      socket.destroy();
      return;
    }
    if (url.pathname !== '/v1/stream' || closing) {
      rejectUpgrade(socket, '404 Not Found', [], '');
      return;
    }
    requestCount++;
    const client = url.searchParams.get('client') ?? '';
    // A fault for every symbol of this client is a failing connect, where it can be one.
    const mode = faultFor(undefined, client);
    switch (mode) {
      case 'http_500':
        rejectUpgrade(socket, '500 Internal Server Error', [], '');
        return;
      case 'rate_limit':
        rejectUpgrade(socket, '429 Too Many Requests', [`Retry-After: ${RETRY_AFTER_S}`], '');
        return;
      case 'html':
        rejectUpgrade(socket, '502 Bad Gateway', ['Content-Type: text/html'], HTML_PAGE);
        return;
      case 'reset':
        (socket as Socket).resetAndDestroy();
        return;
      case 'timeout':
        return;
      default:
        break;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, client));
  }

  function onConnection(ws: WebSocket, client: string): void {
    const c: WsClient = { ws, client, subs: new Map(), busy: false, queued: [] };
    wsClients.add(c);
    log.debug({ client }, 'websocket connected');
    ws.on('close', () => wsClients.delete(c));
    ws.on('error', (err) => log.debug({ client, err: err.message }, 'websocket error'));
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        send(c, { op: 'error', message: 'send JSON text messages' });
        return;
      }
      let msg: unknown;
      try {
        msg = JSON.parse(rawText(data));
      } catch {
        send(c, { op: 'error', message: 'not JSON' });
        return;
      }
      const m = msg as { op?: unknown; symbol?: unknown };
      if ((m.op !== 'subscribe' && m.op !== 'unsubscribe') || typeof m.symbol !== 'string') {
        send(c, {
          op: 'error',
          message: 'expected {"op":"subscribe"|"unsubscribe","symbol":"..."}',
        });
        return;
      }
      const resolved = resolveSymbol(m.symbol, pairs);
      if (!resolved) {
        send(c, { op: 'error', message: `unknown symbol "${m.symbol.slice(0, 40)}"` });
        return;
      }
      if (m.op === 'unsubscribe') {
        c.subs.delete(resolved.symbol);
        send(c, { op: 'unsubscribed', subscription: resolved.symbol });
        return;
      }
      if (!c.subs.has(resolved.symbol) && c.subs.size >= MAX_SUBSCRIPTIONS) {
        send(c, { op: 'error', message: `at most ${MAX_SUBSCRIPTIONS} subscriptions` });
        return;
      }
      c.subs.set(resolved.symbol, resolved.pair);
      send(c, { op: 'subscribed', subscription: resolved.symbol });
      push(c, resolved.symbol, resolved.pair);
    });
  }

  function open(c: WsClient): boolean {
    return c.ws.readyState === WebSocket.OPEN && !closing;
  }

  function send(c: WsClient, msg: unknown): void {
    sendText(c, typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  function sendText(c: WsClient, text: string): void {
    if (!open(c)) return;
    // A fragmented message cannot be interleaved with another: wait for its end (bounded).
    if (c.busy) {
      if (c.queued.length < MAX_WS_QUEUED) c.queued.push(text);
      return;
    }
    if (c.ws.bufferedAmount > MAX_WS_BUFFERED) return;
    c.ws.send(text);
  }

  /** One ticker for `symbol` to `c`, as the faults make it. */
  function push(c: WsClient, symbol: string, pair: string): void {
    if (!open(c)) return;
    const mode = faultFor(symbol, c.client);
    switch (mode) {
      case 'timeout':
      case 'silent':
        return;
      case 'close':
        log.info({ client: c.client, symbol }, 'websocket closed by fault');
        c.ws.close(1011, 'market fault: close');
        return;
      case 'reset':
        log.info({ client: c.client, symbol }, 'websocket reset by fault');
        c.ws.terminate();
        return;
      case 'http_500':
        send(c, { type: 'error', symbol, code: 500, message: 'internal server error' });
        return;
      case 'rate_limit':
        send(c, {
          type: 'error',
          symbol,
          code: 429,
          message: 'rate limit exceeded',
          retryAfter: RETRY_AFTER_S,
        });
        return;
      case 'html':
        sendText(c, HTML_PAGE);
        return;
      case 'invalid_json':
        sendText(
          c,
          `{"type":"ticker","symbol":"${symbol}","price":${marketPrice(pair, now())},"ti`,
        );
        return;
      case 'huge':
        // One at a time per connection.
        if (!c.busy) void streamHugeWs(c, symbol, pair);
        return;
      case 'nan': {
        const v = priceView(pair, mode);
        send(c, { type: 'ticker', symbol, price: 'NaN', time: new Date(v.timeMs).toISOString() });
        return;
      }
      default: {
        const v = priceView(pair, mode);
        const msg: Record<string, unknown> = { type: 'ticker', symbol };
        if (v.price !== undefined) msg.price = v.price;
        msg.time = new Date(v.timeMs).toISOString();
        send(c, msg);
      }
    }
  }

  /** One message of about hugeBytes, in fragments, stopped when the client goes away. */
  async function streamHugeWs(c: WsClient, symbol: string, pair: string): Promise<void> {
    if (c.ws.bufferedAmount > MAX_WS_BUFFERED) return;
    c.busy = true;
    const head = `{"type":"ticker","symbol":"${symbol}","price":${marketPrice(pair, now())},"time":"${new Date(now()).toISOString()}","padding":"`;
    const chunk = Buffer.alloc(CHUNK_BYTES, 'x');
    let sent = 0;
    try {
      await fragment(c.ws, Buffer.from(head), false);
      sent = head.length;
      while (sent < hugeBytes && open(c)) {
        const n = Math.min(CHUNK_BYTES, hugeBytes - sent);
        await fragment(c.ws, n === CHUNK_BYTES ? chunk : chunk.subarray(0, n), false);
        sent += n;
      }
      if (open(c)) {
        await fragment(c.ws, Buffer.from('"}'), true);
        log.info({ client: c.client, symbol, sent }, 'huge message sent');
        return;
      }
    } catch {
      // The connection went away mid-message.
    } finally {
      c.busy = false;
      for (const text of c.queued.splice(0)) sendText(c, text);
    }
    log.info({ client: c.client, symbol, sent }, 'huge message stopped: the client went away');
  }

  const ticker = setInterval(() => {
    for (const c of wsClients) for (const [symbol, pair] of c.subs) push(c, symbol, pair);
  }, tickMs);
  ticker.unref();

  // ---- the server ----

  const server: Server = createServer(onRequest);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('upgrade', onUpgrade);
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
    setFault,
    clearFaults,
    faults: () => [...rules.values()],
    connections: () => sockets.size,
    requests: () => requestCount,
    close: () => {
      closed ??= (async () => {
        closing = true;
        clearInterval(ticker);
        for (const c of wsClients) c.ws.terminate();
        wss.close();
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

/** Resolves when `w` can take more, or has closed. */
function drained(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
  });
}

function fragment(ws: WebSocket, data: Buffer, fin: boolean): Promise<void> {
  return new Promise((resolve, reject) =>
    ws.send(data, { fin, binary: false }, (err) => (err ? reject(err) : resolve())),
  );
}

function rawText(data: WebSocket.RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > max) {
        reject(new Error(`larger than ${max} bytes`));
        req.destroy();
        return;
      }
      parts.push(d);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}
