/**
 * The http upstream (services/node/upstream/http.ts) against real node:http and
 * node:https servers on loopback that serve JSON and inject faults: prices and times,
 * statuses, timeouts, resets, bodies over the cap, Retry-After pauses, redirects, the
 * headers file and its rotation, an extra CA, and the rate limit. Configs are built from
 * NODE_UPSTREAM_* variables with loadUpstreamConfig, as a node builds them.
 */
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  createServer,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Env } from '../../services/shared/config';
import type { Logger } from '../../services/shared/logger';
import { type Scheduler, seededRandom, systemScheduler } from '../../services/shared/scheduler';
import { loadUpstreamConfig } from '../../services/node/upstream/config';
import { createHttpUpstream } from '../../services/node/upstream/http';
import type { Quote, ReadOutcome, Upstream } from '../../services/node/upstream/types';
import { type CertDir, makeCertDir } from '../support/certs';
import { type FakeScheduler, fakeScheduler } from '../support/fake-scheduler';
import { LeakWatch } from '../support/leaks';
import { capturingLogger } from '../support/log-capture';
import { sleep, waitFor } from '../support/wait';

jest.setTimeout(30_000);

const PAIRS = ['USD_HKD', 'EUR_USD', 'GBP_USD'];
/** An API key in the query string: it must never show in a failure detail. */
const SECRET = 'sekrit-key-123';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Hit {
  url: string;
  headers: IncomingHttpHeaders;
  atMs: number;
}

interface TestServer {
  origin: string;
  hits: Hit[];
  handle: Handler;
  close(): Promise<void>;
}

type Event =
  | { pair: string; kind: 'quote'; quote: Quote }
  | { pair: string; kind: 'failure'; outcome: Exclude<ReadOutcome, 'ok'>; detail: string };

interface Rig {
  upstream: Upstream;
  events: Event[];
  latencies: number[];
  /** Runs the fake scheduler's immediates (no-op on the system scheduler). */
  tick(): void;
}

const servers: TestServer[] = [];
const upstreams: Upstream[] = [];

afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
}

async function serve(
  handle: Handler = json({ price: '7.8123' }),
  tlsFiles?: { cert: string; key: string },
): Promise<TestServer> {
  const hits: Hit[] = [];
  const ts: TestServer = {
    origin: '',
    hits,
    handle,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    hits.push({ url: req.url ?? '', headers: req.headers, atMs: Date.now() });
    ts.handle(req, res);
  };
  const server: Server = tlsFiles
    ? createHttpsServer(
        { cert: readFileSync(tlsFiles.cert), key: readFileSync(tlsFiles.key) },
        onRequest,
      )
    : createServer(onRequest);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  ts.origin = `${tlsFiles ? 'https' : 'http'}://127.0.0.1:${port}`;
  servers.push(ts);
  return ts;
}

function rig(
  env: Env,
  opts: { scheduler?: Scheduler; log?: Logger; maxBodyBytes?: number } = {},
): Rig {
  const config = loadUpstreamConfig(
    { NODE_UPSTREAM: 'http', NODE_UPSTREAM_PRICE_PATH: 'price', ...env },
    PAIRS,
  );
  if (opts.maxBodyBytes !== undefined) config.maxBodyBytes = opts.maxBodyBytes;
  const events: Event[] = [];
  const latencies: number[] = [];
  const scheduler = opts.scheduler ?? systemScheduler;
  const upstream = createHttpUpstream(
    config,
    {
      quote: (pair, quote) => events.push({ pair, kind: 'quote', quote }),
      failure: (pair, outcome, detail) => events.push({ pair, kind: 'failure', outcome, detail }),
      latency: (s) => latencies.push(s),
    },
    { scheduler, random: seededRandom(1), log: opts.log ?? capturingLogger('warn').logger },
  );
  upstreams.push(upstream);
  const fake = scheduler === systemScheduler ? undefined : (scheduler as FakeScheduler);
  return { upstream, events, latencies, tick: () => fake?.flush() };
}

/** The URL template of a server: the symbol in the path, an API key in the query. */
function urlOf(s: TestServer, path = '/quote/{symbol}'): string {
  return `${s.origin}${path}?apikey=${SECRET}`;
}

/** Starts one read and waits for the one event it reports. */
async function readOne(r: Rig, pair = 'USD_HKD'): Promise<Event> {
  const n = r.events.length;
  r.upstream.read!(pair);
  return waitFor(`an event for ${pair}`, () => {
    r.tick();
    return r.events[n];
  });
}

function expectFailure(ev: Event, outcome: ReadOutcome, detail?: RegExp): string {
  expect(ev).toMatchObject({ kind: 'failure', outcome });
  const d = (ev as { detail: string }).detail;
  expect(d).not.toContain(SECRET);
  expect(d).not.toContain('apikey');
  if (detail) expect(d).toMatch(detail);
  return d;
}

function expectPrice(ev: Event, price: number): Quote {
  expect(ev).toMatchObject({ kind: 'quote', quote: { price } });
  return (ev as { quote: Quote }).quote;
}

describe('prices and times', () => {
  test('a numeric string price, the URL filled for the pair, accept and user-agent sent', async () => {
    const s = await serve(json({ price: '7.8123' }));
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s) });
    const q = expectPrice(await readOne(r), 7.8123);
    expect(q.ownClock).toBe(true);
    expect(s.hits).toHaveLength(1);
    expect(s.hits[0]!.url).toBe(`/quote/USDHKD?apikey=${SECRET}`);
    expect(s.hits[0]!.headers.accept).toBe('application/json');
    expect(s.hits[0]!.headers['user-agent']).toMatch(/^currency-node\/\d+\.\d+\.\d+/);
    expect(r.latencies).toHaveLength(1);
    expect(r.latencies[0]).toBeGreaterThanOrEqual(0);
    expect(r.latencies[0]).toBeLessThan(5);
  });

  test('a number price; paths and symbols filled per pair, the URL part encoded', async () => {
    const s = await serve(json({ rates: { HKD: 7.8 }, usd: { EUR: 0.92 } }));
    const r = rig({
      NODE_UPSTREAM_URL: urlOf(s),
      NODE_UPSTREAM_PRICE_PATH: 'rates.{quote}',
      NODE_UPSTREAM_SYMBOLS: 'USD_HKD=USD/HKD',
    });
    expectPrice(await readOne(r), 7.8);
    expect(s.hits[0]!.url).toBe(`/quote/USD%2FHKD?apikey=${SECRET}`);
    // EUR_USD's path rates.USD leads nowhere.
    expectFailure(await readOne(r, 'EUR_USD'), 'no_price', /rates\.USD/);
    expect(s.hits[1]!.url).toBe(`/quote/EURUSD?apikey=${SECRET}`);
  });

  test('the time path: an RFC 3339 time and epoch milliseconds', async () => {
    const s = await serve();
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s), NODE_UPSTREAM_TIME_PATH: 'data.0.t' });
    const iso = new Date(Date.now() - 2000).toISOString();
    s.handle = json({ price: 1.25, data: [{ t: iso }] });
    const q1 = expectPrice(await readOne(r), 1.25);
    expect(q1).toEqual({ price: 1.25, atMs: Date.parse(iso), ownClock: false });
    const ms = Date.now() - 1500;
    s.handle = json({ price: '1.5', data: [{ t: ms }] });
    expect(expectPrice(await readOne(r), 1.5)).toEqual({ price: 1.5, atMs: ms, ownClock: false });
    s.handle = json({ price: 1.5, data: [{ t: 'yesterday' }] });
    expectFailure(await readOne(r), 'bad_time');
  });

  test('a time older than NODE_UPSTREAM_MAX_AGE_MS is stale', async () => {
    const s = await serve(json({ price: 2, t: new Date(Date.now() - 60_000).toISOString() }));
    const r = rig({
      NODE_UPSTREAM_URL: urlOf(s),
      NODE_UPSTREAM_TIME_PATH: 't',
      NODE_UPSTREAM_MAX_AGE_MS: '10000',
    });
    expectFailure(await readOne(r), 'stale', /older than 10000 ms/);
    s.handle = json({ price: 2, t: new Date(Date.now() - 1000).toISOString() });
    expectPrice(await readOne(r), 2);
  });

  test.each<[string, unknown, ReadOutcome]>([
    ['a missing field', { amount: 1 }, 'no_price'],
    ['a null price', { price: null }, 'no_price'],
    ['"NaN"', { price: 'NaN' }, 'bad_price'],
    ['a negative price', { price: -1.5 }, 'bad_price'],
    ['a zero price', { price: '0' }, 'bad_price'],
    ['an object', { price: { v: 1 } }, 'bad_price'],
  ])('%s is refused', async (_what, body, outcome) => {
    const s = await serve(json(body));
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s) });
    expectFailure(await readOne(r), outcome);
  });

  test('NODE_UPSTREAM_SYMBOL_PATH must hold the pair’s symbol, ignoring case', async () => {
    const s = await serve(json({ s: 'usdhkd', price: 7.8 }));
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s), NODE_UPSTREAM_SYMBOL_PATH: 's' });
    expectPrice(await readOne(r), 7.8);
    s.handle = json({ s: 'EURUSD', price: 7.8 });
    expectFailure(await readOne(r), 'no_price', /not the symbol USDHKD/);
    s.handle = json({ price: 7.8 });
    expectFailure(await readOne(r), 'no_price');
  });
});

describe('faults', () => {
  test('500 is http_status with the status, the query string not shown', async () => {
    const s = await serve(json({ error: 'boom' }, 500));
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s) });
    const d = expectFailure(await readOne(r), 'http_status', /^500 from /);
    expect(d).toContain(`${s.origin}/quote/USDHKD`);
  });

  test('invalid JSON and an HTML error page are invalid_json; an HTML 502 is http_status', async () => {
    const s = await serve(json('{"price": 1.2'));
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s) });
    expectFailure(await readOne(r), 'invalid_json');
    const html = '<html><body><h1>502 Bad Gateway</h1></body></html>';
    s.handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html);
    };
    expectFailure(await readOne(r), 'invalid_json', /text\/html/);
    s.handle = (_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end(html);
    };
    expectFailure(await readOne(r), 'http_status', /^502 /);
  });

  test('a server that never answers, or stalls inside the body, is a timeout', async () => {
    const s = await serve(() => {});
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s), NODE_UPSTREAM_TIMEOUT_MS: '300' });
    const t0 = Date.now();
    expectFailure(await readOne(r), 'timeout', /within 300 ms/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    s.handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"price": ');
    };
    expectFailure(await readOne(r), 'timeout');
  });

  test('a connection reset and a refused connection are network failures', async () => {
    const s = await serve((req) => req.socket.destroy());
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s) });
    expectFailure(await readOne(r), 'network');
    const gone = await serve();
    const url = urlOf(gone);
    await gone.close();
    const r2 = rig({ NODE_UPSTREAM_URL: url });
    expectFailure(await readOne(r2), 'network', /ECONNREFUSED/);
  });

  /** Streams `total` bytes in 64 KiB chunks, honouring backpressure. */
  function bigBody(total: number, announce: boolean) {
    const seen = { written: 0, closed: false, finished: false };
    const handle: Handler = (_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        ...(announce ? { 'content-length': String(total) } : {}),
      });
      res.on('close', () => {
        seen.finished = res.writableFinished;
        seen.closed = true;
      });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        // Bounded: total / 64 KiB writes at most.
        while (seen.written < total && !res.destroyed) {
          const n = Math.min(chunk.length, total - seen.written);
          seen.written += n;
          if (!res.write(chunk.subarray(0, n))) {
            res.once('drain', pump);
            return;
          }
        }
        if (!res.destroyed) res.end();
      };
      pump();
    };
    return { seen, handle };
  }

  test('a 50 MB chunked body is too_large, and the connection is cut early', async () => {
    const total = 50 * 1024 * 1024;
    const big = bigBody(total, false);
    const s = await serve(big.handle);
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s), NODE_UPSTREAM_TIMEOUT_MS: '20000' });
    expectFailure(await readOne(r), 'too_large', /over the cap of 1048576 bytes/);
    await waitFor('the server to see the connection closed', () => big.seen.closed);
    expect(big.seen.finished).toBe(false);
    expect(big.seen.written).toBeLessThan(total / 2);
  });

  test('a Content-Length over the cap is refused before the body is read', async () => {
    const total = 50 * 1024 * 1024;
    const big = bigBody(total, true);
    const s = await serve(big.handle);
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s) });
    expectFailure(await readOne(r), 'too_large', /announced 52428800 bytes \(Content-Length\)/);
    await waitFor('the server to see the connection closed', () => big.seen.closed);
    expect(big.seen.finished).toBe(false);
    expect(big.seen.written).toBeLessThan(total / 2);
  });

  test('a body within a small cap is read; one byte over is too_large', async () => {
    const body = JSON.stringify({ price: 3 });
    const s = await serve(json(body));
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s) }, { maxBodyBytes: body.length });
    expectPrice(await readOne(r), 3);
    s.handle = json(`${body} `);
    expectFailure(await readOne(r), 'too_large');
  });
});

describe('429 and 503', () => {
  test('Retry-After: 1 pauses every pair; reads fail at once meanwhile, then work again', async () => {
    const s = await serve(json({ error: 'slow down' }, 429, { 'retry-after': '1' }));
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s) });
    expectFailure(await readOne(r), 'rate_limited', /^429 from .*paused for 1\.0 s/);
    const pausedAt = Date.now();
    s.handle = json({ price: 7.8 });
    // Not queued, not sent, and not reported from inside read() itself.
    r.upstream.read!('EUR_USD');
    expect(r.events).toHaveLength(1);
    const ev = await waitFor('the refused read', () => r.events[1]);
    expect(ev.pair).toBe('EUR_USD');
    expectFailure(ev, 'rate_limited', /paused for another (0\.[1-9]|1\.0) s/);
    expect(Date.now() - pausedAt).toBeLessThan(500);
    expect(s.hits).toHaveLength(1);
    await waitFor('the pause to pass', () => Date.now() - pausedAt > 1100, { timeoutMs: 3000 });
    expectPrice(await readOne(r, 'EUR_USD'), 7.8);
    expect(s.hits).toHaveLength(2);
  });

  test('Retry-After as an HTTP date, and a long one capped at 10 minutes (fake clock)', async () => {
    const clock = fakeScheduler();
    const s = await serve();
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s) }, { scheduler: clock });
    s.handle = json({}, 503, { 'retry-after': new Date(clock.now() + 30_000).toUTCString() });
    expectFailure(await readOne(r), 'rate_limited', /^503 .*paused for 30\.0 s/);
    s.handle = json({ price: 1.1 });
    expectFailure(await readOne(r), 'rate_limited', /another 30\.0 s/);
    clock.advance(29_999);
    expectFailure(await readOne(r), 'rate_limited', /another 0\.1 s/);
    clock.advance(1);
    expectPrice(await readOne(r), 1.1);

    s.handle = json({}, 429, { 'retry-after': '3600' });
    expectFailure(await readOne(r), 'rate_limited', /paused for 600\.0 s/);
    s.handle = json({ price: 1.2 });
    clock.advance(599_999);
    expectFailure(await readOne(r), 'rate_limited', /another 0\.1 s/);
    clock.advance(1);
    expectPrice(await readOne(r), 1.2);
    expect(s.hits).toHaveLength(4);
  });

  test('reads waiting for a token when a pause begins fail instead of being sent (fake clock)', async () => {
    const clock = fakeScheduler();
    const s = await serve(json({}, 429, { 'retry-after': '5' }));
    const r = rig(
      { NODE_UPSTREAM_URL: urlOf(s), NODE_UPSTREAM_MAX_RPS: '1' },
      { scheduler: clock },
    );
    r.upstream.read!('USD_HKD');
    r.upstream.read!('EUR_USD'); // no token: queued
    r.upstream.read!('GBP_USD'); // queued too, then unfollowed: dropped silently
    r.upstream.unfollow('GBP_USD');
    await waitFor('the 429', () => r.events[0]);
    expectFailure(r.events[0]!, 'rate_limited', /paused for 5\.0 s/);
    clock.advance(1000); // EUR_USD's token comes while paused
    expect(r.events[1]).toMatchObject({
      pair: 'EUR_USD',
      kind: 'failure',
      outcome: 'rate_limited',
    });
    expectFailure(r.events[1]!, 'rate_limited', /another 4\.0 s/);
    clock.advance(10_000);
    expect(r.events).toHaveLength(2);
    expect(s.hits).toHaveLength(1);
  });

  test('418 with Retry-After (a temporary ban, as Binance sends it) pauses like 429', async () => {
    const s = await serve(json({ code: -1003, msg: 'banned' }, 418, { 'retry-after': '30' }));
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s) });
    expectFailure(await readOne(r), 'rate_limited', /^418 from .*paused for 30\.0 s/);
    s.handle = json({ price: 7.8 });
    expectFailure(await readOne(r, 'EUR_USD'), 'rate_limited', /paused for another/);
    expect(s.hits).toHaveLength(1);
  });

  test('429 or 503 without Retry-After is rate_limited with no pause', async () => {
    const s = await serve(json({}, 503));
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s) });
    const d = expectFailure(await readOne(r), 'rate_limited', /^503 from /);
    expect(d).not.toMatch(/paused/);
    s.handle = json({ price: 5 });
    expectPrice(await readOne(r), 5);
  });
});

describe('redirects', () => {
  test('a redirect to another origin is refused; the other origin sees nothing', async () => {
    const other = await serve(json({ price: 9 }));
    const s = await serve((_req, res) => {
      res.writeHead(302, { location: `${other.origin}/quote` });
      res.end();
    });
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s) });
    expectFailure(await readOne(r), 'redirect', /another origin/);
    expect(other.hits).toHaveLength(0);
    // Another port on the same host is another origin too.
    expect(other.origin).not.toBe(s.origin);
  });

  test('a redirect within the origin is followed, with the same headers', async () => {
    const s = await serve((req, res) => {
      if (req.url?.startsWith('/quote/')) {
        res.writeHead(301, { location: '/v2/USDHKD' });
        res.end();
      } else json({ price: 7.81 })(req, res);
    });
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s) });
    expectPrice(await readOne(r), 7.81);
    expect(s.hits.map((h) => h.url)).toEqual([`/quote/USDHKD?apikey=${SECRET}`, '/v2/USDHKD']);
    expect(s.hits[1]!.headers['user-agent']).toBe(s.hits[0]!.headers['user-agent']);
  });

  test('more than 3 redirects is a redirect failure', async () => {
    let n = 0;
    const s = await serve((_req, res) => {
      res.writeHead(307, { location: `/hop/${++n}` });
      res.end();
    });
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s) });
    expectFailure(await readOne(r), 'redirect', /more than 3 redirects/);
    expect(s.hits).toHaveLength(4);
  });
});

describe('headers file', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'upstream-headers-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('sent with every request, read again after rotation, a broken file keeps the last good one', async () => {
    const clock = fakeScheduler();
    const file = join(dir, 'headers');
    writeFileSync(file, '# the API key\nX-Api-Key: key-one\n');
    const { logger, lines } = capturingLogger('info');
    const s = await serve(json({ price: 7.8 }));
    const r = rig(
      { NODE_UPSTREAM_URL: urlOf(s), NODE_UPSTREAM_HEADERS_FILE: file },
      { scheduler: clock, log: logger },
    );
    expectPrice(await readOne(r), 7.8);
    expect(s.hits[0]!.headers['x-api-key']).toBe('key-one');

    // Rotation as a secret mount does it: a new file renamed over the old one.
    writeFileSync(`${file}.new`, 'X-Api-Key: key-two-rotated\n');
    renameSync(`${file}.new`, file);
    clock.advance(1000);
    expectPrice(await readOne(r), 7.8);
    expect(s.hits[1]!.headers['x-api-key']).toBe('key-two-rotated');

    writeFileSync(file, 'X-Api-Key key-three-no-colon\n');
    clock.advance(1000);
    expectPrice(await readOne(r), 7.8);
    clock.advance(1000);
    expectPrice(await readOne(r), 7.8);
    expect(s.hits[2]!.headers['x-api-key']).toBe('key-two-rotated');
    expect(s.hits[3]!.headers['x-api-key']).toBe('key-two-rotated');
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings[0])).toMatch(/line 1 is not/);
    expect(JSON.stringify(lines)).not.toMatch(/key-(one|two|three)/);
  });
});

describe('extra CA', () => {
  let certs: CertDir;
  let leaf: { cert: string; key: string };
  let caFile: string;
  beforeAll(() => {
    certs = makeCertDir();
    const ca = certs.newCa('upstream-test-ca');
    leaf = ca.issue('upstream-https');
    caFile = ca.cert;
  });
  afterAll(() => certs.remove());

  test('an https server under a CA of its own is trusted only through NODE_UPSTREAM_CA_FILE', async () => {
    const s = await serve(json({ price: 7.8 }), leaf);
    expect(s.origin).toMatch(/^https:/);
    const without = rig({ NODE_UPSTREAM_URL: urlOf(s) });
    expectFailure(await readOne(without), 'network', /certificate/i);
    expect(s.hits).toHaveLength(0);
    const withCa = rig({ NODE_UPSTREAM_URL: urlOf(s), NODE_UPSTREAM_CA_FILE: caFile });
    expectPrice(await readOne(withCa), 7.8);
    expect(s.hits).toHaveLength(1);
  });
});

describe('rate limit', () => {
  test('maxRps 5: 20 reads of one pair at once, no more than 6 reach the server in the first second', async () => {
    const s = await serve(json({ price: 7.8 }));
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s), NODE_UPSTREAM_MAX_RPS: '5' });
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) r.upstream.read!('USD_HKD');
    // A burst of 5, then the one read queued for the pair; the 14 others were dropped.
    await waitFor('6 quotes', () => r.events.length >= 6 || undefined);
    expect(s.hits.filter((h) => h.atMs - t0 < 1000).length).toBeLessThanOrEqual(6);
    expect(s.hits[5]!.atMs - s.hits[0]!.atMs).toBeGreaterThanOrEqual(150);
    await sleep(400); // nothing more may come: a negative check needs a bounded wait
    expect(s.hits).toHaveLength(6);
    expect(r.events).toHaveLength(6);
    expect(r.events.every((e) => e.kind === 'quote')).toBe(true);
  });

  test('maxRps 5: 20 reads over 20 pairs go at the bucket’s pace, first in first out (fake clock)', async () => {
    const clock = fakeScheduler();
    const pairs = Array.from({ length: 20 }, (_, i) => `P${String(i).padStart(2, '0')}_USD`);
    const s = await serve(json({ price: 1 }));
    const config = loadUpstreamConfig(
      {
        NODE_UPSTREAM: 'http',
        NODE_UPSTREAM_URL: urlOf(s, '/q/{base}'),
        NODE_UPSTREAM_PRICE_PATH: 'price',
        NODE_UPSTREAM_MAX_RPS: '5',
      },
      pairs,
    );
    const events: string[] = [];
    const upstream = createHttpUpstream(
      config,
      { quote: (p) => events.push(p), failure: (p, o) => events.push(`${p}:${o}`) },
      { scheduler: clock, random: seededRandom(1), log: capturingLogger('warn').logger },
    );
    upstreams.push(upstream);
    for (const p of pairs) upstream.read!(p);
    for (const p of pairs.slice(0, 3)) upstream.read!(p); // in flight, not queued: sent later
    for (const p of pairs.slice(10, 13)) upstream.read!(p); // already queued: dropped
    const arrived = (n: number) =>
      waitFor(`${n} requests at the server`, () => s.hits.length >= n || undefined);
    await arrived(5);
    await sleep(100);
    expect(s.hits).toHaveLength(5); // the burst
    clock.advance(200);
    await arrived(6);
    clock.advance(799); // the first second: burst + 4 refills
    await arrived(9);
    await sleep(100);
    expect(s.hits).toHaveLength(9);
    // Bounded: 14 more tokens at 200 ms each.
    for (let i = 0; i < 14; i++) {
      clock.advance(200);
      await arrived(10 + i);
    }
    await waitFor('every read to report', () => events.length >= 23 || undefined);
    const expected = [...pairs, ...pairs.slice(0, 3)].map((p) => `/q/${p.slice(0, 3)}`);
    expect(s.hits.map((h) => h.url.split('?')[0])).toEqual(expected);
    expect(events).toHaveLength(23);
    expect(events.filter((e) => e.includes(':'))).toEqual([]);
  });
});

describe('unfollow and close', () => {
  test('unfollow drops an in-flight read silently and ends its request', async () => {
    let closedByClient = false;
    const s = await serve((_req, res) => res.on('close', () => (closedByClient = true)));
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s), NODE_UPSTREAM_TIMEOUT_MS: '400' });
    r.upstream.read!('USD_HKD');
    await waitFor('the request', () => s.hits.length === 1);
    r.upstream.follow('EUR_USD');
    r.upstream.unfollow('USD_HKD');
    await waitFor('the request to be aborted', () => closedByClient);
    await sleep(600); // past the timeout: nothing may be reported
    expect(r.events).toEqual([]);
    s.handle = json({ price: 7.8 });
    expectPrice(await readOne(r), 7.8);
    expect(r.events).toHaveLength(1);
  });

  test('close aborts what is in flight, reports nothing, and leaves no socket or timer', async () => {
    const watch = new LeakWatch().start();
    let closedByClient = false;
    const s = await serve((_req, res) => res.on('close', () => (closedByClient = true)));
    const r = rig({ NODE_UPSTREAM_URL: urlOf(s), NODE_UPSTREAM_MAX_RPS: '1' });
    r.upstream.read!('USD_HKD');
    r.upstream.read!('EUR_USD'); // queued for the next token
    await waitFor('the request', () => s.hits.length === 1);
    await r.upstream.close();
    await waitFor('the server to see the request end', () => closedByClient);
    r.upstream.read!('GBP_USD');
    await s.close();
    servers.splice(servers.indexOf(s), 1);
    await watch.expectNoLeaks();
    expect(r.events).toEqual([]);
    expect(s.hits).toHaveLength(1);
  });
});
