/**
 * A WebSocket price feed for the load figure: the market server's stream protocol
 * (services/market/server.ts: subscribe/unsubscribe by symbol, then one
 * {"type":"ticker","symbol","price","time"} message per subscribed symbol every tick,
 * prices from marketPrice) without its cap of 256 subscriptions per connection, so that
 * one node can follow 500 pairs on its one connection. No faults. Loopback only; close()
 * ends every socket and the tick timer.
 */
import { type Server, createServer } from 'node:http';
import type { Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { resolveSymbol } from '../../services/market/symbols';
import { marketPrice } from '../../services/node/prices';

export interface WsFeed {
  /** ws://127.0.0.1:port/v1/stream */
  readonly wsUrl: string;
  /** Subscriptions over all connections now. */
  subscriptions(): number;
  /** Ticker messages sent so far. */
  sent(): number;
  close(): Promise<void>;
}

const MAX_MESSAGE = 16 * 1024;
const MAX_SUBSCRIPTIONS = 10_000;
/** A reader this far behind is skipped until it catches up (as the market server does). */
const MAX_BUFFERED = 1024 * 1024;

export async function startWsFeed({ tickMs }: { tickMs: number }): Promise<WsFeed> {
  const clients = new Map<WebSocket, Map<string, string>>();
  const sockets = new Set<Socket>();
  let sentCount = 0;
  const server: Server = createServer((_req, res) => {
    res.writeHead(404).end();
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const wss = new WebSocketServer({ server, path: '/v1/stream', maxPayload: MAX_MESSAGE });
  wss.on('connection', (ws) => {
    const subs = new Map<string, string>();
    clients.set(ws, subs);
    ws.on('close', () => clients.delete(ws));
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let m: { op?: unknown; symbol?: unknown };
      try {
        m = JSON.parse(String(data)) as typeof m;
      } catch {
        return;
      }
      if (typeof m.symbol !== 'string') return;
      const r = resolveSymbol(m.symbol);
      if (!r) {
        ws.send(JSON.stringify({ op: 'error', message: 'unknown symbol' }));
        return;
      }
      if (m.op === 'unsubscribe') {
        subs.delete(r.symbol);
        ws.send(JSON.stringify({ op: 'unsubscribed', symbol: r.symbol }));
      } else if (m.op === 'subscribe' && subs.size < MAX_SUBSCRIPTIONS) {
        subs.set(r.symbol, r.pair);
        ws.send(JSON.stringify({ op: 'subscribed', symbol: r.symbol }));
        push(ws, r.symbol, r.pair);
      }
    });
  });

  function push(ws: WebSocket, symbol: string, pair: string): void {
    if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > MAX_BUFFERED) return;
    const t = Date.now();
    ws.send(
      JSON.stringify({
        type: 'ticker',
        symbol,
        price: marketPrice(pair, t),
        time: new Date(t).toISOString(),
      }),
    );
    sentCount++;
  }

  const ticker = setInterval(() => {
    for (const [ws, subs] of clients) for (const [symbol, pair] of subs) push(ws, symbol, pair);
  }, tickMs);
  ticker.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    wsUrl: `ws://127.0.0.1:${port}/v1/stream`,
    subscriptions: () => [...clients.values()].reduce((a, s) => a + s.size, 0),
    sent: () => sentCount,
    close: async () => {
      clearInterval(ticker);
      for (const ws of clients.keys()) ws.terminate();
      wss.close();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await done;
    },
  };
}
