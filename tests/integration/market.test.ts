/**
 * The test-and-demo market (services/market): quotes over HTTP equal to the simulated market
 * at the server's clock, tickers over WebSocket (the first at once, then every tick), every
 * fault mode doing what it says for one symbol only and for one client only (the other
 * symbol and the other client stay healthy), the control endpoint, close() leaving nothing
 * behind, and the program (`node dist/services/market/main.js`): --help, exit 2 on bad
 * variables, serving and stopping on SIGTERM. Also the compose `upstream` profile, read
 * statically: the market service and a node-upstream whose variables loadUpstreamConfig takes.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type IncomingHttpHeaders, request } from 'node:http';
import { join } from 'node:path';
import WebSocket from 'ws';
import { parse as parseYaml } from 'yaml';
import { FAULT_MODES, type FaultMode, STALE_MS } from '../../services/market/faults';
import { type MarketServer, startMarketServer } from '../../services/market/server';
import { resolveSymbol } from '../../services/market/symbols';
import { loadUpstreamConfig } from '../../services/node/upstream/config';
import { marketPrice } from '../../services/node/prices';
import { LeakWatch } from '../support/leaks';
import { capturingLogger } from '../support/log-capture';
import { sleep, waitFor } from '../support/wait';

jest.setTimeout(60_000);

const ROOT = join(__dirname, '..', '..');
const T0 = Date.parse('2025-03-04T05:06:07.089Z');
const TICK_MS = 100;
/** Size of a `huge` WebSocket message here (HTTP keeps the real 50 MB). */
const WS_HUGE = 2 * 1024 * 1024;

// ---- clients ----

type Reply =
  | { ok: true; status: number; headers: IncomingHttpHeaders; body: string; cut: boolean }
  | { ok: false; error: string };

/** One GET on a fresh connection; the body is read up to maxBytes, then the request is cut. */
function get(url: string, { timeoutMs = 3000, maxBytes = 1024 * 1024 } = {}): Promise<Reply> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: Reply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const req = request(url, { agent: false }, (res) => {
      const parts: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        parts.push(d);
        size += d.length;
        if (size >= maxBytes) {
          done({
            ok: true,
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(parts).toString('utf8'),
            cut: true,
          });
          req.destroy();
        }
      });
      res.on('end', () =>
        done({
          ok: true,
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(parts).toString('utf8'),
          cut: false,
        }),
      );
      res.on('error', (err: NodeJS.ErrnoException) =>
        done({ ok: false, error: err.code ?? err.message }),
      );
    });
    const timer = setTimeout(() => {
      done({ ok: false, error: 'timeout' });
      req.destroy();
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) =>
      done({ ok: false, error: err.code ?? err.message }),
    );
    req.end();
  });
}

async function send(
  url: string,
  method: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, json: await res.json() };
}

interface Msg {
  raw: string;
  json?: Record<string, unknown>;
}

/** A WebSocket client that keeps every message and how the connection ended. */
class StreamClient {
  readonly ws: WebSocket;
  msgs: Msg[] = [];
  closeCode: number | undefined;
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;

  constructor(url: string, opts: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, { handshakeTimeout: 3000, ...opts });
    this.ws.on('message', (data: Buffer, isBinary) => {
      const raw = isBinary ? '<binary>' : data.toString('utf8');
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        json = undefined;
      }
      this.msgs.push({ raw, json });
    });
    this.ws.on('error', () => undefined);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) =>
      this.ws.once('close', (code) => {
        this.closeCode = code;
        resolve(code);
      }),
    );
  }

  subscribe(symbol: string, op = 'subscribe'): void {
    this.ws.send(JSON.stringify({ op, symbol }));
  }

  tickers(symbol: string): Record<string, unknown>[] {
    return this.msgs
      .map((m) => m.json)
      .filter((j): j is Record<string, unknown> => j?.type === 'ticker' && j.symbol === symbol);
  }

  async subscribed(symbols: string[]): Promise<void> {
    for (const s of symbols) this.subscribe(s);
    await waitFor(`subscribed to ${symbols.join(',')}`, () =>
      symbols.every((s) => this.tickers(s).length > 0),
    );
  }

  end(): void {
    this.ws.terminate();
  }
}

// ---- what healthy and each fault look like ----

const iso = (ms: number) => new Date(ms).toISOString();

/** A healthy HTTP quote for `symbol` at T0. */
function expectHealthyQuote(r: Reply, symbol: string, pair: string): void {
  expect(r).toMatchObject({ ok: true, status: 200 });
  if (!r.ok) return;
  expect(JSON.parse(r.body)).toEqual({
    symbol,
    price: String(marketPrice(pair, T0)),
    time: iso(T0),
  });
}

/** What one faulty HTTP quote looks like, per mode. */
function expectFaultyQuote(mode: FaultMode, r: Reply, symbol: string, pair: string): void {
  const json = () => JSON.parse((r as { body: string }).body) as Record<string, unknown>;
  switch (mode) {
    case 'http_500':
      expect(r).toMatchObject({ ok: true, status: 500 });
      break;
    case 'timeout':
    case 'silent':
      expect(r).toEqual({ ok: false, error: 'timeout' });
      break;
    case 'reset':
    case 'close':
      expect(r).toMatchObject({ ok: false });
      expect((r as { error: string }).error).not.toBe('timeout');
      break;
    case 'invalid_json':
      expect(r).toMatchObject({ ok: true, status: 200 });
      expect(json).toThrow(SyntaxError);
      break;
    case 'html':
      expect(r).toMatchObject({ ok: true, status: 502 });
      expect((r as { headers: IncomingHttpHeaders }).headers['content-type']).toMatch(
        /^text\/html/,
      );
      expect((r as { body: string }).body).toMatch(/^<!DOCTYPE html>/);
      break;
    case 'missing':
      expect(r).toMatchObject({ ok: true, status: 200 });
      expect(json()).toEqual({ symbol, time: iso(T0) });
      break;
    case 'nan':
      expect(json()).toEqual({ symbol, price: 'NaN', time: iso(T0) });
      break;
    case 'negative':
      expect(json()).toEqual({ symbol, price: String(-marketPrice(pair, T0)), time: iso(T0) });
      break;
    case 'zero':
      expect(json()).toEqual({ symbol, price: '0', time: iso(T0) });
      break;
    case 'stale':
      expect(json()).toEqual({
        symbol,
        price: String(marketPrice(pair, T0 - STALE_MS)),
        time: iso(T0 - STALE_MS),
      });
      break;
    case 'huge':
      expect(r).toMatchObject({ ok: true, status: 200, cut: true });
      expect((r as { body: string }).body.length).toBeGreaterThanOrEqual(2 * 1024 * 1024);
      break;
    case 'rate_limit':
      expect(r).toMatchObject({ ok: true, status: 429 });
      expect((r as { headers: IncomingHttpHeaders }).headers['retry-after']).toBe('2');
      break;
  }
}

/** A healthy client's tickers: at least two arrive (waited for: the machine may be busy), all right. */
async function expectHealthyTickers(c: StreamClient, symbol: string, pair: string): Promise<void> {
  await waitFor(`two ${symbol} tickers`, () => c.tickers(symbol).length >= 2, {
    timeoutMs: 20_000,
  });
  const t = c.tickers(symbol);
  for (const m of t)
    expect(m).toEqual({ type: 'ticker', symbol, price: marketPrice(pair, T0), time: iso(T0) });
  expect(c.msgs.filter((m) => m.json === undefined || m.json.type === 'error')).toEqual([]);
  expect(c.closeCode).toBeUndefined();
}

/** What the pushed messages for `symbol` look like under a fault (connection modes aside). */
function expectFaultyTickers(mode: FaultMode, c: StreamClient, symbol: string, pair: string): void {
  const forSymbol = c.msgs.map((m) => m.json).filter((j) => j?.symbol === symbol);
  const tickers = c.tickers(symbol);
  const nonJson = c.msgs.filter((m) => m.json === undefined);
  switch (mode) {
    case 'timeout':
    case 'silent':
      expect(forSymbol).toEqual([]);
      expect(nonJson).toEqual([]);
      break;
    case 'http_500':
      expect(forSymbol.length).toBeGreaterThan(0);
      for (const j of forSymbol) expect(j).toMatchObject({ type: 'error', code: 500 });
      break;
    case 'rate_limit':
      expect(forSymbol.length).toBeGreaterThan(0);
      for (const j of forSymbol)
        expect(j).toMatchObject({ type: 'error', code: 429, retryAfter: 2 });
      break;
    case 'html':
      expect(forSymbol).toEqual([]);
      expect(nonJson.length).toBeGreaterThan(0);
      for (const m of nonJson) expect(m.raw).toMatch(/^<!DOCTYPE html>/);
      break;
    case 'invalid_json':
      expect(forSymbol).toEqual([]);
      expect(nonJson.length).toBeGreaterThan(0);
      for (const m of nonJson)
        expect(m.raw.startsWith(`{"type":"ticker","symbol":"${symbol}"`)).toBe(true);
      break;
    case 'huge':
      expect(tickers.length).toBeGreaterThan(0);
      for (const m of c.msgs.filter((x) => x.json?.symbol === symbol))
        expect(m.raw.length).toBeGreaterThanOrEqual(WS_HUGE);
      break;
    default: {
      expect(tickers.length).toBeGreaterThan(0);
      const byMode: Partial<Record<FaultMode, Record<string, unknown>>> = {
        missing: { type: 'ticker', symbol, time: iso(T0) },
        nan: { type: 'ticker', symbol, price: 'NaN', time: iso(T0) },
        negative: { type: 'ticker', symbol, price: -marketPrice(pair, T0), time: iso(T0) },
        zero: { type: 'ticker', symbol, price: 0, time: iso(T0) },
        stale: {
          type: 'ticker',
          symbol,
          price: marketPrice(pair, T0 - STALE_MS),
          time: iso(T0 - STALE_MS),
        },
      };
      const expected = byMode[mode];
      expect(expected).toBeDefined();
      for (const m of tickers) expect(m).toEqual(expected);
    }
  }
}

// ---- the server ----

let market: MarketServer;
const captured = capturingLogger('info', { service: 'currency-market' });

beforeAll(async () => {
  market = await startMarketServer({ tickMs: TICK_MS, now: () => T0, logger: captured.logger });
});

afterAll(async () => {
  await market.close();
});

afterEach(() => market.clearFaults());

const quoteUrl = (symbol: string, client: string) =>
  `${market.url}/v1/quote/${symbol}?client=${client}`;
const options = (mode: FaultMode) => ({
  timeoutMs: mode === 'timeout' || mode === 'silent' ? 400 : 5000,
  maxBytes: mode === 'huge' ? 2 * 1024 * 1024 : 1024 * 1024,
});

describe('symbols', () => {
  it('takes BASEQUOTE, BASE_QUOTE and BASE-QUOTE in any case, and splits known pairs right', () => {
    for (const s of ['USDHKD', 'USD_HKD', 'usd-hkd', 'USD/HKD'])
      expect(resolveSymbol(s)).toEqual({ symbol: 'USDHKD', pair: 'USD_HKD' });
    expect(resolveSymbol('DOGEUSD')).toEqual({ symbol: 'DOGEUSD', pair: 'DOGE_USD' });
    expect(resolveSymbol('ABCDEF', ['ABCD_EF'])).toEqual({ symbol: 'ABCDEF', pair: 'ABCD_EF' });
    expect(resolveSymbol('XYZQRS')).toEqual({ symbol: 'XYZQRS', pair: 'XYZ_QRS' });
    for (const s of ['USD', '', 'USD HKD', 'USD_HKD_X', '../etc', 'A'.repeat(40)])
      expect(resolveSymbol(s)).toBeUndefined();
  });
});

describe('HTTP quotes', () => {
  it('answers the simulated market price at its clock, as a numeric string with an RFC 3339 time', async () => {
    for (const [symbol, pair] of [
      ['USDHKD', 'USD_HKD'],
      ['BTCUSD', 'BTC_USD'],
      ['EUR_USD', 'EUR_USD'],
    ]) {
      const r = await get(quoteUrl(symbol, 'node-a'));
      expectHealthyQuote(r, symbol.replace('_', ''), pair);
    }
    // Without a client too; unknown paths and symbols are 404 with a JSON error.
    expectHealthyQuote(await get(`${market.url}/v1/quote/USDHKD`), 'USDHKD', 'USD_HKD');
    expect(await get(`${market.url}/v1/quote/U%20S`)).toMatchObject({ ok: true, status: 404 });
    expect(await get(`${market.url}/v2/nothing`)).toMatchObject({ ok: true, status: 404 });
    expect(await get(`${market.url}/healthz`)).toMatchObject({ ok: true, status: 200 });
  });

  it('follows its clock: a price is marketPrice(pair, now)', async () => {
    let t = Date.parse('2026-01-02T03:04:05.678Z');
    const m = await startMarketServer({ now: () => t });
    try {
      for (let i = 0; i < 3; i++, t += 61_234) {
        const r = await get(`${m.url}/v1/quote/USDHKD`);
        if (!r.ok) throw new Error(r.error);
        const body = JSON.parse(r.body) as { price: string; time: string };
        expect(Number(body.price)).toBe(marketPrice('USD_HKD', t));
        expect(Date.parse(body.time)).toBe(t);
      }
    } finally {
      await m.close();
    }
  });

  it('counts requests', async () => {
    const before = market.requests();
    await get(quoteUrl('USDHKD', 'node-a'));
    await get(quoteUrl('EURUSD', 'node-b'));
    expect(market.requests()).toBe(before + 2);
  });

  describe.each(FAULT_MODES.map((m) => [m]))('fault %s', (mode) => {
    it('for one symbol: that symbol fails for every client, another symbol stays healthy', async () => {
      market.setFault({ symbol: 'USD_HKD', mode });
      const [a, b, other] = await Promise.all([
        get(quoteUrl('USDHKD', 'node-a'), options(mode)),
        get(quoteUrl('usd-hkd', 'node-b'), options(mode)),
        get(quoteUrl('EURUSD', 'node-a')),
      ]);
      expectFaultyQuote(mode, a, 'USDHKD', 'USD_HKD');
      expectFaultyQuote(mode, b, 'USDHKD', 'USD_HKD');
      expectHealthyQuote(other, 'EURUSD', 'EUR_USD');
    });

    it('for one client: every symbol fails for that client, another client stays healthy', async () => {
      market.setFault({ client: 'node-a', mode });
      const [a1, a2, b] = await Promise.all([
        get(quoteUrl('USDHKD', 'node-a'), options(mode)),
        get(quoteUrl('EURUSD', 'node-a'), options(mode)),
        get(quoteUrl('USDHKD', 'node-b')),
      ]);
      expectFaultyQuote(mode, a1, 'USDHKD', 'USD_HKD');
      expectFaultyQuote(mode, a2, 'EURUSD', 'EUR_USD');
      expectHealthyQuote(b, 'USDHKD', 'USD_HKD');
    });
  });

  it('uses the most specific fault: symbol and client, then symbol, then client, then all', async () => {
    market.setFault({ mode: 'zero' });
    market.setFault({ client: 'node-a', mode: 'nan' });
    market.setFault({ symbol: 'USDHKD', mode: 'negative' });
    market.setFault({ symbol: 'USDHKD', client: 'node-a', mode: 'http_500' });
    expectFaultyQuote('http_500', await get(quoteUrl('USDHKD', 'node-a')), 'USDHKD', 'USD_HKD');
    expectFaultyQuote('negative', await get(quoteUrl('USDHKD', 'node-b')), 'USDHKD', 'USD_HKD');
    expectFaultyQuote('nan', await get(quoteUrl('EURUSD', 'node-a')), 'EURUSD', 'EUR_USD');
    expectFaultyQuote('zero', await get(quoteUrl('EURUSD', 'node-b')), 'EURUSD', 'EUR_USD');
    // A later fault for the same symbol and client replaces the earlier one.
    market.setFault({ symbol: 'USD_HKD', client: 'node-a', mode: 'missing' });
    expect(market.faults()).toHaveLength(4);
    expectFaultyQuote('missing', await get(quoteUrl('USDHKD', 'node-a')), 'USDHKD', 'USD_HKD');
  });

  it('stops a huge body when the client goes away, and can send one whole (valid JSON)', async () => {
    const before = captured.lines.length;
    const r = await get(quoteUrl('USDHKD', 'node-a'), { maxBytes: 1024 * 1024 });
    expect(r).toMatchObject({ ok: true, status: 200 });
    market.setFault({ symbol: 'USDHKD', mode: 'huge' });
    const cut = await get(quoteUrl('USDHKD', 'node-a'), { maxBytes: 3 * 1024 * 1024 });
    expect(cut).toMatchObject({ ok: true, cut: true });
    const stopped = await waitFor('the huge body to stop', () =>
      captured.lines.slice(before).find((l) => l.msg === 'huge body stopped: the client went away'),
    );
    expect(stopped.sent as number).toBeLessThan(20 * 1024 * 1024);
    await waitFor('no connection left', () => market.connections() === 0);

    const small = await startMarketServer({ hugeBytes: 300_000 });
    try {
      small.setFault({ mode: 'huge' });
      const whole = await get(`${small.url}/v1/quote/USDHKD`, { maxBytes: 10 * 1024 * 1024 });
      if (!whole.ok) throw new Error(whole.error);
      expect(whole.cut).toBe(false);
      expect(whole.body.length).toBeGreaterThanOrEqual(300_000);
      expect(JSON.parse(whole.body)).toMatchObject({ symbol: 'USDHKD' });
    } finally {
      await small.close();
    }
  });
});

describe('fault control over HTTP', () => {
  const faultsUrl = () => `${market.url}/control/faults`;

  it('sets faults with POST, lists them with GET and clears them with DELETE', async () => {
    expect(
      await send(faultsUrl(), 'POST', { symbol: 'usd_hkd', client: 'node-a', mode: 'http_500' }),
    ).toEqual({
      status: 200,
      json: { faults: [{ symbol: 'USDHKD', client: 'node-a', mode: 'http_500' }] },
    });
    expect(await send(faultsUrl(), 'POST', { mode: 'stale' })).toMatchObject({ status: 200 });
    expect((await send(faultsUrl(), 'GET')).json).toEqual({
      faults: [{ symbol: 'USDHKD', client: 'node-a', mode: 'http_500' }, { mode: 'stale' }],
    });
    expectFaultyQuote('http_500', await get(quoteUrl('USDHKD', 'node-a')), 'USDHKD', 'USD_HKD');
    expectFaultyQuote('stale', await get(quoteUrl('USDHKD', 'node-b')), 'USDHKD', 'USD_HKD');
    expect(await send(faultsUrl(), 'DELETE')).toEqual({ status: 200, json: { faults: [] } });
    expectHealthyQuote(await get(quoteUrl('USDHKD', 'node-a')), 'USDHKD', 'USD_HKD');
  });

  it('refuses an unknown mode, an unknown field and a bad symbol with 400, setting nothing', async () => {
    for (const body of [
      { mode: 'explode' },
      { mode: 'zero', extra: 1 },
      { symbol: 'U S', mode: 'zero' },
      { client: '', mode: 'zero' },
      'not an object',
    ]) {
      const r = await send(faultsUrl(), 'POST', body);
      expect(r.status).toBe(400);
      expect(typeof (r.json as { error: string }).error).toBe('string');
    }
    const raw = await fetch(faultsUrl(), {
      method: 'POST',
      body: '{',
      signal: AbortSignal.timeout(5000),
    });
    expect(raw.status).toBe(400);
    expect(market.faults()).toEqual([]);
    expect(() => market.setFault({ mode: 'nope' as FaultMode })).toThrow(/mode must be one of/);
  });
});

describe('WebSocket tickers', () => {
  let ws: MarketServer;
  const wsLog = capturingLogger('info', { service: 'currency-market' });
  const clients: StreamClient[] = [];
  const open = async (client: string, symbols: string[], opts: WebSocket.ClientOptions = {}) => {
    const c = new StreamClient(`${ws.wsUrl}?client=${client}`, opts);
    clients.push(c);
    await c.opened;
    await c.subscribed(symbols);
    return c;
  };
  /** After the fault is on: forget what came before, then watch a few ticks. */
  const watch = async (...cs: StreamClient[]) => {
    await sleep(TICK_MS);
    for (const c of cs) c.msgs = [];
    await sleep(TICK_MS * 4);
  };

  beforeAll(async () => {
    ws = await startMarketServer({
      tickMs: TICK_MS,
      now: () => T0,
      hugeBytes: WS_HUGE,
      logger: wsLog.logger,
    });
  });
  afterEach(() => {
    ws.clearFaults();
    for (const c of clients.splice(0)) c.end();
  });
  afterAll(async () => {
    await ws.close();
  });

  it('acknowledges a subscription, sends a ticker at once and then every tick, and stops on unsubscribe', async () => {
    const c = new StreamClient(`${ws.wsUrl}?client=node-a`);
    clients.push(c);
    await c.opened;
    const t = Date.now();
    c.subscribe('USD_HKD');
    await waitFor('the first ticker', () => c.tickers('USDHKD').length > 0);
    expect(Date.now() - t).toBeLessThan(TICK_MS * 5);
    expect(c.msgs[0]!.json).toEqual({ op: 'subscribed', subscription: 'USDHKD' });
    // The first ticker is sent with the acknowledgement, not at the next tick.
    expect(c.msgs[1]!.json).toEqual({
      type: 'ticker',
      symbol: 'USDHKD',
      price: marketPrice('USD_HKD', T0),
      time: iso(T0),
    });
    await waitFor('three tickers', () => c.tickers('USDHKD').length >= 3);
    c.subscribe('USDHKD', 'unsubscribe');
    await waitFor('unsubscribed', () => c.msgs.some((m) => m.json?.op === 'unsubscribed'));
    const n = c.tickers('USDHKD').length;
    await sleep(TICK_MS * 3);
    expect(c.tickers('USDHKD').length).toBe(n);
  });

  it('answers a bad message with an error and keeps the connection', async () => {
    const c = await open('node-a', ['EURUSD']);
    c.ws.send('not json');
    c.ws.send(JSON.stringify({ op: 'dance', symbol: 'USDHKD' }));
    c.ws.send(JSON.stringify({ op: 'subscribe', symbol: 'U S' }));
    await waitFor('three errors', () => c.msgs.filter((m) => m.json?.op === 'error').length === 3);
    await sleep(TICK_MS * 2);
    expect(c.closeCode).toBeUndefined();
    expect(c.tickers('EURUSD').length).toBeGreaterThan(1);
  });

  it('takes on one connection every pair a node may announce (1,000), up to 1,024 subscriptions', async () => {
    // The node's websocket upstream carries all of its pairs on one connection.
    const c = new StreamClient(`${ws.wsUrl}?client=node-a`);
    clients.push(c);
    await c.opened;
    const symbols = Array.from({ length: 1024 }, (_, i) => `P${String(i).padStart(4, '0')}_USD`);
    for (const s of symbols) c.subscribe(s);
    const acks = () => c.msgs.filter((m) => m.json?.op === 'subscribed').length;
    await waitFor('1,024 acknowledgements', () => acks() === 1024);
    expect(c.msgs.filter((m) => m.json?.op === 'error')).toEqual([]);
    c.subscribe('P1024_USD');
    await waitFor('the 1,025th refused', () =>
      c.msgs.some(
        (m) => m.json?.op === 'error' && /at most 1024 subscriptions/.test(String(m.json.message)),
      ),
    );
    expect(c.closeCode).toBeUndefined();
  });

  describe.each(FAULT_MODES.map((m) => [m]))('fault %s', (mode) => {
    const connection = mode === 'close' || mode === 'reset';
    const code = mode === 'close' ? 1011 : 1006;

    it('for one symbol: its tickers fail for every client, another symbol stays healthy', async () => {
      if (connection) {
        // The fault ends every connection following the symbol; one that follows another stays.
        const a = await open('node-a', ['USDHKD', 'EURUSD']);
        const b = await open('node-b', ['USDHKD']);
        const other = await open('node-a', ['EURUSD']);
        ws.setFault({ symbol: 'USDHKD', mode });
        expect(await a.closed).toBe(code);
        expect(await b.closed).toBe(code);
        await watch(other);
        await expectHealthyTickers(other, 'EURUSD', 'EUR_USD');
        return;
      }
      const a = await open('node-a', ['USDHKD', 'EURUSD']);
      const b = await open('node-b', ['USDHKD', 'EURUSD']);
      const otherSymbol = await open('node-a', ['EURUSD']);
      ws.setFault({ symbol: 'USD_HKD', mode });
      await watch(a, b, otherSymbol);
      for (const c of [a, b]) {
        expectFaultyTickers(mode, c, 'USDHKD', 'USD_HKD');
        expect(c.tickers('EURUSD').length).toBeGreaterThan(0);
        for (const t of c.tickers('EURUSD')) expect(t.price).toBe(marketPrice('EUR_USD', T0));
        expect(c.closeCode).toBeUndefined();
      }
      await expectHealthyTickers(otherSymbol, 'EURUSD', 'EUR_USD');
    });

    it('for one client: its tickers fail, another client stays healthy', async () => {
      const a = await open('node-a', ['USDHKD']);
      const b = await open('node-b', ['USDHKD']);
      ws.setFault({ client: 'node-a', mode });
      if (connection) expect(await a.closed).toBe(code);
      await watch(a, b);
      if (!connection) expectFaultyTickers(mode, a, 'USDHKD', 'USD_HKD');
      await expectHealthyTickers(b, 'USDHKD', 'USD_HKD');
    });
  });

  it.each([
    ['http_500', /Unexpected server response: 500/],
    ['rate_limit', /Unexpected server response: 429/],
    ['html', /Unexpected server response: 502/],
    ['reset', /ECONNRESET|socket hang up/],
    ['timeout', /handshake has timed out/],
  ] as const)(
    'refuses a new connection of a client under a %s fault for every symbol; another client connects',
    async (mode, error) => {
      ws.setFault({ client: 'node-a', mode });
      const a = new StreamClient(`${ws.wsUrl}?client=node-a`, { handshakeTimeout: 500 });
      clients.push(a);
      await expect(a.opened).rejects.toThrow(error);
      const b = await open('node-b', ['USDHKD']);
      await watch(b);
      await expectHealthyTickers(b, 'USDHKD', 'USD_HKD');
    },
  );

  it('stops a huge message (50 MB) when the client goes away (a reader that caps messages)', async () => {
    // The real size: a small one would fit in the socket buffers before the client gives up.
    const log = capturingLogger('info', { service: 'currency-market' });
    const big = await startMarketServer({ tickMs: TICK_MS, logger: log.logger });
    try {
      const small = new StreamClient(`${big.wsUrl}?client=node-a`, { maxPayload: 256 * 1024 });
      clients.push(small);
      await small.opened;
      await small.subscribed(['USDHKD']);
      big.setFault({ client: 'node-a', mode: 'huge' });
      // The client closes with 1009 (message too big) without waiting for the server's answer.
      expect([1006, 1009]).toContain(await small.closed);
      const stopped = await waitFor('the huge message to stop', () =>
        log.lines.find((l) => l.msg === 'huge message stopped: the client went away'),
      );
      expect(stopped.sent as number).toBeLessThan(20 * 1024 * 1024);
    } finally {
      await big.close();
    }
  });
});

describe('close()', () => {
  it('ends every connection, pending request, stream and timer', async () => {
    const leaks = new LeakWatch().start();
    const m = await startMarketServer({ tickMs: 50 });
    m.setFault({ symbol: 'USDHKD', mode: 'timeout' });
    m.setFault({ symbol: 'BTCUSD', mode: 'huge' });
    const pending = get(`${m.url}/v1/quote/USDHKD`, { timeoutMs: 10_000 });
    const huge = get(`${m.url}/v1/quote/BTCUSD`, {
      timeoutMs: 10_000,
      maxBytes: 100 * 1024 * 1024,
    });
    const c = new StreamClient(`${m.wsUrl}?client=x`);
    await c.opened;
    await c.subscribed(['EURUSD']);
    await waitFor('three connections', () => m.connections() === 3);
    const t = Date.now();
    await m.close();
    await m.close(); // idempotent
    expect(Date.now() - t).toBeLessThan(2000);
    expect(m.connections()).toBe(0);
    expect(await pending).toMatchObject({ ok: false });
    expect(await huge).toMatchObject({ ok: false });
    expect(await c.closed).toBe(1006);
    await leaks.expectNoLeaks();
  });
});

describe('the program (node dist/services/market/main.js)', () => {
  const MAIN = join(ROOT, 'dist', 'services', 'market', 'main.js');
  const run = (env: Record<string, string>, args: string[] = [], timeoutMs = 15_000) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = spawn(process.execPath, [MAIN, ...args], {
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, out, err });
      });
    });

  it('prints its variables with --help', async () => {
    const r = await run({}, ['--help']);
    expect(r.code).toBe(0);
    for (const v of ['MARKET_LISTEN_ADDR', 'MARKET_TICK_MS', 'LOG_LEVEL'])
      expect(r.out).toContain(v);
    expect(r.out).toContain('0.0.0.0:8080');
  });

  it.each([
    ['MARKET_LISTEN_ADDR', 'nowhere'],
    ['MARKET_LISTEN_ADDR', '127.0.0.1:70000'],
    ['MARKET_TICK_MS', '0'],
    ['MARKET_TICK_MS', 'fast'],
    ['LOG_LEVEL', 'loud'],
  ])('exits 2 naming %s=%s', async (name, value) => {
    const r = await run({ [name]: value });
    expect(r.code).toBe(2);
    expect(r.err).toContain(`invalid configuration: ${name}:`);
  });

  it('serves quotes and tickers on MARKET_LISTEN_ADDR and stops on SIGTERM with exit 0', async () => {
    const child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        MARKET_LISTEN_ADDR: '127.0.0.1:0',
        MARKET_TICK_MS: '100',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const url = await waitFor(
        'the market to listen',
        () => /"url":"(http:[^"]+)"/.exec(out)?.[1],
      );
      const r = await get(`${url}/v1/quote/USDHKD?client=p`);
      if (!r.ok) throw new Error(r.error);
      const body = JSON.parse(r.body) as { price: string; time: string };
      expect(Number(body.price)).toBe(marketPrice('USD_HKD', Date.parse(body.time)));
      const c = new StreamClient(`${url.replace('http:', 'ws:')}/v1/stream?client=p`);
      await c.opened;
      await c.subscribed(['EURUSD']);
      await waitFor('two tickers', () => c.tickers('EURUSD').length >= 2);
      c.end();
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

describe('compose: the upstream profile', () => {
  const dir = join(ROOT, 'deploy', 'compose');
  interface Service {
    image?: string;
    entrypoint?: string[];
    profiles?: string[];
    environment?: Record<string, string>;
    depends_on?: Record<string, { condition: string; required?: boolean }>;
    healthcheck?: { test?: string[] };
  }
  const file = parseYaml(readFileSync(join(dir, 'compose.yaml'), 'utf8'), { merge: true }) as {
    services: Record<string, Service>;
  };
  const dotEnv: Record<string, string> = {};
  for (const line of readFileSync(join(dir, '.env'), 'utf8').split('\n')) {
    const m = /^([A-Z_0-9]+)=(.*)$/.exec(line.trim());
    if (m) dotEnv[m[1]!] = m[2]!;
  }
  /** Compose's ${VAR}, ${VAR:-default} and ${VAR-default}, from .env (as a user gets it). */
  const interpolate = (v: string): string =>
    v.replace(
      /\$\{([A-Z_0-9]+)(?:(:?-)([^}]*))?\}/g,
      (_all, name: string, op?: string, dflt?: string) => {
        const set = dotEnv[name];
        if (op === ':-') return set === undefined || set === '' ? (dflt ?? '') : set;
        if (op === '-') return set === undefined ? (dflt ?? '') : set;
        return set ?? '';
      },
    );
  const envOf = (s: Service): Record<string, string> =>
    Object.fromEntries(
      Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]),
    );
  const UPSTREAM_VARS = [
    'NODE_UPSTREAM',
    'NODE_UPSTREAM_URL',
    'NODE_UPSTREAM_SYMBOL',
    'NODE_UPSTREAM_SYMBOLS',
    'NODE_UPSTREAM_PRICE_PATH',
    'NODE_UPSTREAM_TIME_PATH',
    'NODE_UPSTREAM_SYMBOL_PATH',
    'NODE_UPSTREAM_SUBSCRIBE',
    'NODE_UPSTREAM_UNSUBSCRIBE',
    'NODE_UPSTREAM_HEADERS_FILE',
    'NODE_UPSTREAM_CA_FILE',
    'NODE_UPSTREAM_TIMEOUT_MS',
    'NODE_UPSTREAM_MAX_RPS',
    'NODE_UPSTREAM_FAIL_AFTER_MS',
    'NODE_UPSTREAM_MAX_AGE_MS',
  ];

  it('runs the market from the node image, in the upstream profile, with a health check', () => {
    const market = file.services.market!;
    expect(market.profiles).toEqual(['upstream']);
    expect(interpolate(market.image!)).toBe(interpolate(file.services.node!.image!));
    // The image's entrypoint is currency-node: the market replaces it.
    expect(market.entrypoint).toEqual(['node', 'dist/services/market/main.js']);
    expect(envOf(market).MARKET_LISTEN_ADDR).toBe('0.0.0.0:8080');
    expect(market.healthcheck?.test?.[0]).toBe('CMD');
    // The image holds all of dist/services (Dockerfile.node copies dist, .dockerignore keeps services/).
    expect(readFileSync(join(ROOT, 'Dockerfile.node'), 'utf8')).toMatch(
      /COPY --from=build \/app\/dist dist/,
    );
    expect(readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n')).toContain('!services/');
  });

  it('passes every NODE_UPSTREAM_* variable to every node service, simulated by default', () => {
    for (const name of ['node', 'node-fx', 'node-crypto']) {
      const env = envOf(file.services[name]!);
      for (const v of UPSTREAM_VARS)
        expect({ name, v, set: v in env }).toEqual({ name, v, set: true });
      const upstream = loadUpstreamConfig(env, env.NODE_CURRENCY_PAIRS!.split(','));
      expect(upstream.kind).toBe('simulated');
    }
  });

  it('has node-upstream read the market over HTTP, with variables loadUpstreamConfig takes', () => {
    const s = file.services['node-upstream']!;
    expect(s.profiles).toEqual(['upstream']);
    expect(s.depends_on?.market?.condition).toBe('service_healthy');
    const env = envOf(s);
    const pairs = env.NODE_CURRENCY_PAIRS!.split(',');
    const cfg = loadUpstreamConfig(env, pairs);
    expect(cfg.kind).toBe('http');
    expect(cfg.url).toMatch(/^http:\/\/market:8080\/v1\/quote\/\{symbol\}\?client=/);
    expect(cfg.pricePath).toBe('price');
    expect(cfg.timePath).toBe('time');
  });
});
