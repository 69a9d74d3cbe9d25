/**
 * NODE_UPSTREAM=websocket against a real `ws` server on loopback: subscriptions, routing
 * by symbol, bad messages, the message cap, reconnects (server close, silence, 401,
 * handshake timeout, refused), the headers file and its rotation, and a clean close().
 * Configs come from the NODE_UPSTREAM_* variables through loadUpstreamConfig.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { type AddressInfo, type Server as NetServer, type Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket, WebSocketServer, type ServerOptions } from 'ws';
import { type UpstreamConfig, loadUpstreamConfig } from '../../services/node/upstream/config';
import type { Quote, ReadOutcome, Upstream } from '../../services/node/upstream/types';
import { createWebSocketUpstream } from '../../services/node/upstream/websocket';
import { type Logger, silentLogger } from '../../services/shared/logger';
import { type Scheduler, type TimerHandle, seededRandom } from '../../services/shared/scheduler';
import { LeakWatch } from '../support/leaks';
import { capturingLogger } from '../support/log-capture';
import { waitFor } from '../support/wait';

jest.setTimeout(30_000);

const SUB = (s: string) => `{"op":"subscribe","symbol":"${s}"}`;
const UNSUB = (s: string) => `{"op":"unsubscribe","symbol":"${s}"}`;

// ---- a WebSocket server on loopback that records what it sees ----

interface Peer {
  ws: WebSocket;
  headers: IncomingHttpHeaders;
  received: string[];
  pings: number;
  closed: boolean;
  closeCode?: number;
}

interface TestServer {
  /** The upstream URL (with a query string that must never show in a detail). */
  url: string;
  peers: Peer[];
  /** Handshakes seen, refused ones too. */
  handshakes: number;
  close(): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];

async function startServer(
  opts: { refuseWith?: number; autoPong?: boolean } = {},
): Promise<TestServer> {
  const serverOpts: ServerOptions = { host: '127.0.0.1', port: 0, autoPong: opts.autoPong ?? true };
  const server: TestServer = { url: '', peers: [], handshakes: 0, close: async () => {} };
  serverOpts.verifyClient = (_info, cb) => {
    server.handshakes++;
    if (opts.refuseWith !== undefined) cb(false, opts.refuseWith, 'Refused');
    else cb(true);
  };
  const wss = new WebSocketServer(serverOpts);
  wss.on('connection', (ws, req) => {
    const peer: Peer = { ws, headers: req.headers, received: [], pings: 0, closed: false };
    server.peers.push(peer);
    ws.on('message', (data) => peer.received.push(String(data)));
    ws.on('ping', () => peer.pings++);
    ws.on('close', (code) => {
      peer.closed = true;
      peer.closeCode = code;
    });
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const { port } = wss.address() as AddressInfo;
  server.url = `ws://127.0.0.1:${port}/stream?token=query-secret`;
  server.close = async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  };
  cleanups.push(() => server.close());
  return server;
}

/** A TCP server that accepts and never answers (a handshake that times out). */
async function startSilentTcp(): Promise<string> {
  const sockets = new Set<Socket>();
  const srv: NetServer = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  });
  return `ws://127.0.0.1:${(srv.address() as AddressInfo).port}/`;
}

async function closedPortUrl(): Promise<string> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return `ws://127.0.0.1:${port}/`;
}

function send(peer: Peer, message: unknown): void {
  peer.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
}

// ---- the upstream under test ----

function config(
  url: string,
  extra: Record<string, string> = {},
  pairs = ['BTC_USD', 'ETH_USD'],
): UpstreamConfig {
  return loadUpstreamConfig(
    {
      NODE_UPSTREAM: 'websocket',
      NODE_UPSTREAM_URL: url,
      NODE_UPSTREAM_SYMBOL: '{base}{quote}T',
      NODE_UPSTREAM_PRICE_PATH: 'p',
      NODE_UPSTREAM_SYMBOL_PATH: 's',
      NODE_UPSTREAM_SUBSCRIBE: '{"op":"subscribe","symbol":"{symbol}"}',
      NODE_UPSTREAM_UNSUBSCRIBE: '{"op":"unsubscribe","symbol":"{symbol}"}',
      ...extra,
    },
    pairs,
  );
}

/** The system clock (shifted by `skew.ms`), with the timers still pending kept count of. */
function trackingScheduler() {
  const skew = { ms: 0 };
  const pending = new Set<TimerHandle>();
  const scheduler: Scheduler = {
    now: () => Date.now() + skew.ms,
    setTimeout: (fn, ms) => {
      const h: NodeJS.Timeout = setTimeout(() => {
        pending.delete(h);
        fn();
      }, ms);
      pending.add(h);
      return h;
    },
    clearTimeout: (h) => {
      pending.delete(h);
      clearTimeout(h as NodeJS.Timeout);
    },
    setImmediate: (fn) => {
      const h: NodeJS.Immediate = setImmediate(() => {
        pending.delete(h);
        fn();
      });
      pending.add(h);
      return h;
    },
    clearImmediate: (h) => {
      pending.delete(h);
      clearImmediate(h as NodeJS.Immediate);
    },
  };
  return { scheduler, pending, skew };
}

interface Failure {
  pair: string;
  outcome: Exclude<ReadOutcome, 'ok'>;
  detail: string;
}

function start(cfg: UpstreamConfig, opts: { log?: Logger } = {}) {
  const quotes: { pair: string; quote: Quote }[] = [];
  const failures: Failure[] = [];
  const latencies: number[] = [];
  /** Events after close() resolved: there must be none. */
  const late: string[] = [];
  let sealed = false;
  const clock = trackingScheduler();
  const up: Upstream = createWebSocketUpstream(
    cfg,
    {
      quote: (pair, quote) => (sealed ? late.push(`quote ${pair}`) : quotes.push({ pair, quote })),
      failure: (pair, outcome, detail) =>
        sealed ? late.push(`failure ${pair}`) : failures.push({ pair, outcome, detail }),
      latency: (s) => latencies.push(s),
    },
    {
      scheduler: clock.scheduler,
      random: seededRandom(7),
      log: opts.log ?? silentLogger(),
      backoff: { initialMs: 20, maxMs: 200 },
    },
  );
  const close = async () => {
    await up.close();
    sealed = true;
  };
  cleanups.push(close);
  const outcomes = (pair: string) => failures.filter((f) => f.pair === pair).map((f) => f.outcome);
  return { up, quotes, failures, latencies, late, clock, close, outcomes };
}

let leaks: LeakWatch;
beforeAll(() => {
  leaks = new LeakWatch().start();
});
afterEach(async () => {
  // Upstreams first (pushed after their servers), then servers.
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  await leaks.expectNoLeaks();
});

// ---- tests ----

test('subscribes on follow and unsubscribes on unfollow; one connection, open while a pair is followed', async () => {
  const server = await startServer();
  const t = start(config(server.url));
  expect(t.up.kind).toBe('websocket');
  expect('read' in t.up).toBe(false);

  t.up.follow('BTC_USD');
  t.up.follow('BTC_USD'); // idempotent
  const peer = await waitFor('a connection', () => server.peers[0]);
  await waitFor('the BTC subscription', () => peer.received.length === 1);
  t.up.follow('ETH_USD');
  await waitFor('the ETH subscription', () => peer.received.length === 2);
  t.up.unfollow('BTC_USD');
  t.up.unfollow('BTC_USD'); // idempotent
  await waitFor('the BTC unsubscription', () => peer.received.length === 3);
  expect(peer.received).toEqual([SUB('BTCUSDT'), SUB('ETHUSDT'), UNSUB('BTCUSDT')]);
  expect(peer.closed).toBe(false);
  expect(t.latencies).toHaveLength(1);
  expect(t.latencies[0]).toBeGreaterThanOrEqual(0);
  expect(t.latencies[0]).toBeLessThan(5);

  t.up.unfollow('ETH_USD');
  await waitFor('the connection closed when no pair is followed', () => peer.closed);
  expect(peer.received).toEqual([
    SUB('BTCUSDT'),
    SUB('ETHUSDT'),
    UNSUB('BTCUSDT'),
    UNSUB('ETHUSDT'),
  ]);
  expect(peer.closeCode).toBe(1000);
  expect(t.failures).toEqual([]);

  t.up.follow('ETH_USD');
  const again = await waitFor('a new connection', () => server.peers[1]);
  await waitFor('the new subscription', () => again.received.length === 1);
  expect(again.received).toEqual([SUB('ETHUSDT')]);
  expect(server.peers).toHaveLength(2);
  expect(t.failures).toEqual([]);
});

test('prices are routed to pairs by symbol, ignoring case; acknowledgements and other symbols are ignored', async () => {
  const server = await startServer();
  const t = start(config(server.url));
  t.up.follow('BTC_USD');
  t.up.follow('ETH_USD');
  const peer = await waitFor('a connection', () => server.peers[0]);
  await waitFor('both subscriptions', () => peer.received.length === 2);
  const before = Date.now();
  send(peer, { result: null, id: 1 });
  send(peer, { s: 'btcusdt', p: '100.5' });
  send(peer, { s: 'ETHUSDT', p: 2000 });
  send(peer, { s: 'XRPUSDT', p: 1 });
  send(peer, { s: 'EthUsdt', p: 2001.25 });
  await waitFor('three quotes', () => t.quotes.length === 3);
  expect(t.quotes.map((q) => [q.pair, q.quote.price, q.quote.ownClock])).toEqual([
    ['BTC_USD', 100.5, true],
    ['ETH_USD', 2000, true],
    ['ETH_USD', 2001.25, true],
  ]);
  for (const q of t.quotes) {
    expect(q.quote.atMs).toBeGreaterThanOrEqual(before);
    expect(q.quote.atMs).toBeLessThanOrEqual(Date.now());
  }
  expect(t.failures).toEqual([]);
});

test('pairs sharing one symbol: subscribed once, each pair gets its price, unsubscribed when the last goes', async () => {
  const server = await startServer();
  const t = start(
    config(
      server.url,
      {
        NODE_UPSTREAM_SYMBOLS: 'BTC_USD=XBT,BTC_EUR=XBT',
        NODE_UPSTREAM_PRICE_PATH: 'prices.{quote}',
      },
      ['BTC_USD', 'BTC_EUR'],
    ),
  );
  t.up.follow('BTC_USD');
  t.up.follow('BTC_EUR');
  const peer = await waitFor('a connection', () => server.peers[0]);
  await waitFor('the subscription', () => peer.received.length === 1);
  send(peer, { s: 'XBT', prices: { USD: 100, EUR: 90 } });
  await waitFor('two quotes', () => t.quotes.length === 2);
  expect(t.quotes.map((q) => [q.pair, q.quote.price])).toEqual([
    ['BTC_USD', 100],
    ['BTC_EUR', 90],
  ]);

  t.up.unfollow('BTC_USD'); // BTC_EUR still needs XBT: no unsubscribe
  send(peer, { s: 'XBT', prices: { USD: 101, EUR: 91 } });
  await waitFor('a third quote', () => t.quotes.length === 3);
  expect(t.quotes[2]).toMatchObject({ pair: 'BTC_EUR', quote: { price: 91 } });
  expect(peer.received).toEqual([SUB('XBT')]);
  t.up.follow('BTC_USD'); // still subscribed on this connection: nothing to send
  t.up.unfollow('BTC_EUR');
  t.up.unfollow('BTC_USD');
  await waitFor('the connection closed', () => peer.closed);
  expect(peer.received).toEqual([SUB('XBT'), UNSUB('XBT')]);
  expect(t.failures).toEqual([]);
});

test('invalid JSON, NaN, negative, zero, a stale time and binary are failures, never quotes; a message naming the pair without a price (a heartbeat) is neither', async () => {
  const server = await startServer();
  const t = start(
    config(server.url, { NODE_UPSTREAM_TIME_PATH: 't', NODE_UPSTREAM_MAX_AGE_MS: '5000' }),
  );
  t.up.follow('BTC_USD');
  const peer = await waitFor('a connection', () => server.peers[0]);
  await waitFor('the subscription', () => peer.received.length === 1);
  const now = Date.now();
  send(peer, '<html>bad gateway</html>');
  send(peer, { s: 'BTCUSDT', t: now });
  send(peer, { s: 'BTCUSDT', p: 'NaN', t: now });
  send(peer, { s: 'BTCUSDT', p: -1, t: now });
  send(peer, { s: 'BTCUSDT', p: 0, t: now });
  send(peer, { s: 'BTCUSDT', p: 100, t: now - 60_000 });
  peer.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  send(peer, { s: 'BTCUSDT', p: 101, t: now });
  await waitFor('the valid quote', () => t.quotes.length === 1);
  expect(t.quotes[0]).toEqual({
    pair: 'BTC_USD',
    quote: { price: 101, atMs: now, ownClock: false },
  });
  expect(t.outcomes('BTC_USD')).toEqual([
    'invalid_json',
    'bad_price',
    'bad_price',
    'bad_price',
    'stale',
    'invalid_json',
  ]);
  // Bad messages do not end the connection.
  expect(server.peers).toHaveLength(1);
  expect(peer.closed).toBe(false);
});

test('a message over the cap closes the connection with 1009, is one too_large failure per pair, and the upstream reconnects', async () => {
  const server = await startServer();
  const t = start({ ...config(server.url), maxBodyBytes: 4096 });
  t.up.follow('BTC_USD');
  t.up.follow('ETH_USD');
  const peer = await waitFor('a connection', () => server.peers[0]);
  await waitFor('the subscriptions', () => peer.received.length === 2);
  send(peer, { s: 'BTCUSDT', p: 1, pad: 'x'.repeat(5000) });
  await waitFor('the server sees the close', () => peer.closed);
  expect(peer.closeCode).toBe(1009);
  const next = await waitFor('a second connection', () => server.peers[1]);
  await waitFor('the resubscriptions', () => next.received.length === 2);
  expect(t.outcomes('BTC_USD')).toEqual(['too_large']);
  expect(t.outcomes('ETH_USD')).toEqual(['too_large']);
  expect(t.quotes).toEqual([]);
  send(next, { s: 'BTCUSDT', p: 5 });
  await waitFor('a quote on the new connection', () => t.quotes.length === 1);
});

test('server closes mid-stream: one network failure per pair, reconnect, resubscribe', async () => {
  const server = await startServer();
  const t = start(config(server.url));
  t.up.follow('BTC_USD');
  t.up.follow('ETH_USD');
  const first = await waitFor('a connection', () => server.peers[0]);
  await waitFor('the subscriptions', () => first.received.length === 2);
  send(first, { s: 'BTCUSDT', p: 1 });
  await waitFor('a quote', () => t.quotes.length === 1);
  first.ws.close(1001, 'going away');
  const second = await waitFor('a second connection', () => server.peers[1]);
  await waitFor('the resubscriptions', () => second.received.length === 2);
  expect(second.received.sort()).toEqual([SUB('BTCUSDT'), SUB('ETHUSDT')].sort());
  expect(t.outcomes('BTC_USD')).toEqual(['network']);
  expect(t.outcomes('ETH_USD')).toEqual(['network']);
  expect(t.failures[0]!.detail).toContain('1001');
  send(second, { s: 'ETHUSDT', p: 2 });
  await waitFor('a quote on the new connection', () => t.quotes.length === 2);
  expect(t.latencies).toHaveLength(2);

  // A reset (no close frame) is a failure too.
  second.ws.terminate();
  const third = await waitFor('a third connection', () => server.peers[2]);
  await waitFor('the resubscriptions', () => third.received.length === 2);
  expect(t.outcomes('BTC_USD')).toEqual(['network', 'network']);
});

test('a server that stops sending: the idle watchdog terminates the connection and reconnects', async () => {
  const server = await startServer({ autoPong: false });
  const t = start(config(server.url, { NODE_UPSTREAM_FAIL_AFTER_MS: '300' }));
  t.up.follow('BTC_USD');
  const first = await waitFor('a connection', () => server.peers[0]);
  await waitFor('the subscription', () => first.received.length === 1);
  send(first, { s: 'BTCUSDT', p: 1 });
  await waitFor('the first connection ended', () => first.closed);
  const second = await waitFor('a second connection', () => server.peers[1]);
  await waitFor('the resubscription', () => second.received.length === 1);
  expect(t.outcomes('BTC_USD')[0]).toBe('timeout');
  expect(t.failures[0]!.detail).toContain('no message');
  expect(t.quotes).toHaveLength(1);
});

test('a quiet but healthy server is kept alive by pings', async () => {
  const server = await startServer(); // answers pings
  const t = start(config(server.url, { NODE_UPSTREAM_FAIL_AFTER_MS: '1500' }));
  t.up.follow('BTC_USD');
  const peer = await waitFor('a connection', () => server.peers[0]);
  await waitFor('three pings (about 3 s)', () => peer.pings >= 3, { timeoutMs: 8000 });
  expect(peer.closed).toBe(false);
  expect(server.peers).toHaveLength(1);
  expect(t.failures).toEqual([]);
});

test('a handshake refused with 401 is an http_status failure per attempt, retried; no secret in the detail', async () => {
  const server = await startServer({ refuseWith: 401 });
  const t = start(config(server.url));
  t.up.follow('BTC_USD');
  t.up.follow('ETH_USD');
  await waitFor('three failed attempts', () => t.outcomes('BTC_USD').length >= 3);
  const failures = t.failures.slice();
  const handshakes = server.handshakes;
  expect(new Set(failures.map((f) => f.outcome))).toEqual(new Set(['http_status']));
  // Once per attempt and pair (an attempt may be in flight).
  const btc = failures.filter((f) => f.pair === 'BTC_USD').length;
  expect(btc).toBeLessThanOrEqual(handshakes);
  expect(btc).toBeGreaterThanOrEqual(handshakes - 1);
  expect(failures[0]!.detail).toContain('401');
  expect(failures[0]!.detail).toContain('/stream');
  expect(failures[0]!.detail).not.toContain('query-secret');
  expect(server.peers).toEqual([]);
  expect(t.latencies).toEqual([]);
});

test('a handshake that gets no answer is a timeout; a refused connect is a network failure', async () => {
  const silent = await startSilentTcp();
  const t = start(config(silent, { NODE_UPSTREAM_TIMEOUT_MS: '200' }));
  t.up.follow('BTC_USD');
  await waitFor('a handshake timeout', () => t.failures.length >= 1);
  expect(t.failures[0]).toMatchObject({ pair: 'BTC_USD', outcome: 'timeout' });
  expect(t.failures[0]!.detail).toContain('200 ms');

  const refused = start(config(await closedPortUrl()));
  refused.up.follow('ETH_USD');
  await waitFor('two refused attempts', () => refused.failures.length >= 2);
  expect(refused.outcomes('ETH_USD').slice(0, 2)).toEqual(['network', 'network']);
  expect(refused.failures[0]!.detail).toContain('ECONNREFUSED');
});

test('the headers file is sent on the handshake, and a rotated key from the next connect on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ws-upstream-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'headers');
  writeFileSync(file, '# API key\nX-Api-Key: key-one-abc\n');
  const server = await startServer();
  const { logger, lines } = capturingLogger('debug');
  const t = start(config(server.url, { NODE_UPSTREAM_HEADERS_FILE: file }), { log: logger });
  t.up.follow('BTC_USD');
  const first = await waitFor('a connection', () => server.peers[0]);
  expect(first.headers['x-api-key']).toBe('key-one-abc');

  writeFileSync(file, 'X-Api-Key: key-two-defgh\n');
  t.clock.skew.ms += 2000; // past the once-a-second check of the file
  first.ws.terminate();
  const second = await waitFor('a second connection', () => server.peers[1]);
  expect(second.headers['x-api-key']).toBe('key-two-defgh');
  await waitFor('the resubscription', () => second.received.length === 1);

  const logged = JSON.stringify(lines) + JSON.stringify(t.failures);
  expect(logged).not.toContain('key-one-abc');
  expect(logged).not.toContain('key-two-defgh');
  expect(logged).not.toContain('query-secret');
  expect(t.failures.map((f) => f.outcome)).toEqual(['network']);
});

test('close() leaves no timer and no socket, and no event fires after it', async () => {
  const server = await startServer();
  const t = start(config(server.url));
  t.up.follow('BTC_USD');
  const peer = await waitFor('a connection', () => server.peers[0]);
  await waitFor('the subscription', () => peer.received.length === 1);
  send(peer, { s: 'BTCUSDT', p: 1 });
  await waitFor('a quote', () => t.quotes.length === 1);
  expect(t.clock.pending.size).toBeGreaterThan(0); // the watchdog and the ping
  await t.close();
  expect(t.clock.pending.size).toBe(0);
  await waitFor('the server sees the connection closed', () => peer.closed);
  t.up.follow('ETH_USD'); // after close: nothing
  expect(t.clock.pending.size).toBe(0);
  expect(t.late).toEqual([]);

  // Closed while waiting to reconnect (the server refuses): the backoff timer goes too.
  const refusing = await startServer({ refuseWith: 500 });
  const r = start(config(refusing.url));
  r.up.follow('BTC_USD');
  await waitFor('a refused attempt', () => r.failures.length >= 1);
  expect(r.failures[0]!.detail).toContain('500');
  await r.close();
  expect(r.clock.pending.size).toBe(0);
  expect(r.late).toEqual([]);

  // Closed before the connection was even attempted.
  const early = start(config(server.url));
  early.up.follow('BTC_USD');
  await early.close();
  expect(early.clock.pending.size).toBe(0);
});

test('subscribe messages are spaced by NODE_UPSTREAM_MAX_RPS, so a feed that limits client messages is not flooded', async () => {
  const server = await startServer();
  const pairs = ['BTC_USD', 'ETH_USD', 'SOL_USD', 'ADA_USD', 'XRP_USD', 'DOT_USD'];
  const t = start(config(server.url, { NODE_UPSTREAM_MAX_RPS: '4' }, pairs));
  const startedAt = Date.now();
  for (const pair of pairs) t.up.follow(pair);
  const peer = await waitFor('a connection', () => server.peers[0]);
  // The last pair's subscription has not gone yet: its failure clock waits.
  expect(t.up.waiting!('DOT_USD')).toBe(true);
  await waitFor('every subscription', () => peer.received.length === pairs.length, {
    timeoutMs: 10_000,
  });
  await waitFor('no pair waiting', () => pairs.every((p) => !t.up.waiting!(p)));
  // 4 per second: the first goes at once, the sixth at least 5 x 250 ms later (a lower
  // bound: a slow machine only stretches it).
  expect(Date.now() - startedAt).toBeGreaterThanOrEqual(5 * 250);
  expect(peer.received).toEqual(pairs.map((p) => SUB(`${p.replace('_', '')}T`)));
});
