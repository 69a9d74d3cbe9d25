/**
 * The market's WebSocket stream (/v1/stream): the connect (failed as a fault for every
 * symbol of the client says), subscribe/unsubscribe messages, and one ticker per
 * subscription per tick, acted out under the faults. Bounded: message size and
 * subscriptions per connection capped, slow readers skipped, a huge message's followers
 * queued up to a cap.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { marketPrice } from '../node/prices';
import { CHUNK_BYTES, type MarketContext } from './context';
import { HTML_PAGE, RETRY_AFTER_S, priceView } from './faults';
import { resolveSymbol } from './symbols';

const MAX_WS_MESSAGE = 16 * 1024;
/**
 * Per connection, as a large exchange allows: more than the 1,000 pairs a node may announce
 * (CONTROLLER_MAX_PAIRS_PER_NODE), which a node's websocket upstream carries on one connection.
 */
const MAX_SUBSCRIPTIONS = 1024;
/** A WebSocket reader this far behind is skipped until it catches up. */
const MAX_WS_BUFFERED = 1024 * 1024;
/** Messages held per connection while a huge message goes out; more are dropped. */
const MAX_WS_QUEUED = 64;

interface WsClient {
  ws: WebSocket;
  client: string;
  /** symbol -> pair */
  subs: Map<string, string>;
  /** A huge message is being sent: other messages wait in `queued` until it ends. */
  busy: boolean;
  queued: string[];
}

export interface MarketStream {
  /** The HTTP server's 'upgrade' handler. */
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Stops the ticker and ends every WebSocket connection. */
  close(): void;
}

/** The WebSocket side of a market: tickers every `tickMs` from one timer. */
export function createMarketStream(ctx: MarketContext, tickMs: number): MarketStream {
  const { now, log, pairs, faults } = ctx;
  const wsClients = new Set<WsClient>();

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
    if (url.pathname !== '/v1/stream' || ctx.closing()) {
      rejectUpgrade(socket, '404 Not Found', [], '');
      return;
    }
    ctx.countRequest();
    const client = url.searchParams.get('client') ?? '';
    // A fault for every symbol of this client is a failing connect, where it can be one.
    const mode = faults.modeFor(undefined, client);
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
    return c.ws.readyState === WebSocket.OPEN && !ctx.closing();
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
    const mode = faults.modeFor(symbol, c.client);
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
        const v = priceView(pair, mode, now());
        send(c, { type: 'ticker', symbol, price: 'NaN', time: new Date(v.timeMs).toISOString() });
        return;
      }
      default: {
        const v = priceView(pair, mode, now());
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
    const t = now();
    const head = `{"type":"ticker","symbol":"${symbol}","price":${marketPrice(pair, t)},"time":"${new Date(t).toISOString()}","padding":"`;
    const chunk = Buffer.alloc(CHUNK_BYTES, 'x');
    let sent = 0;
    try {
      await fragment(c.ws, Buffer.from(head), false);
      sent = head.length;
      while (sent < ctx.hugeBytes && open(c)) {
        const n = Math.min(CHUNK_BYTES, ctx.hugeBytes - sent);
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

  return {
    onUpgrade,
    close(): void {
      clearInterval(ticker);
      for (const c of wsClients) c.ws.terminate();
      wss.close();
    },
  };
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
