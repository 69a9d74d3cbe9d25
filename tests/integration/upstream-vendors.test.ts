/**
 * The worked configurations in docs/upstreams.md against the vendors' documented formats.
 * The env blocks are read from the page itself (a fenced `sh` block under each `###`
 * heading of "Worked configurations"), so page and test cannot drift. Offline: replies
 * are the fixtures in tests/fixtures/upstreams (documented shapes, made-up values; their
 * sources are in that folder's README.md), never the live APIs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONTROLLER_DEFAULTS } from '../../services/controller/config';
import { intervalSchema } from '../../services/node/config';
import {
  UPSTREAM_DEFAULTS,
  type UpstreamConfig,
  loadUpstreamConfig,
} from '../../services/node/upstream/config';
import {
  MAX_FUTURE_MS,
  type PairVars,
  extractQuote,
  fillTemplate,
  getPath,
  jsonStringContent,
  pairVars,
} from '../../services/node/upstream/extract';
import { listOf, pairSchema } from '../../services/shared/config';

const ROOT = join(__dirname, '..', '..');
const PAGE = readFileSync(join(ROOT, 'docs', 'upstreams.md'), 'utf8');
const FIXTURES = join(ROOT, 'tests', 'fixtures', 'upstreams');

/** When the fixtures' replies arrive: just after the newest of them. */
const NOW_MS = Date.parse('2026-12-07T09:15:32.000Z');

// ---------------------------------------------------------------------------------------
// Reading the page

/** A value as the shell would see it: one pair of single quotes removed. */
function shellValue(name: string, raw: string): string {
  const quoted = /^'([^']*)'$/.exec(raw);
  if (quoted) return quoted[1]!;
  // Unquoted, a value must mean the same to a shell and to an env file.
  if (/[\s'"?*[\]{}&;|<>$`\\()#~]/.test(raw))
    throw new Error(`${name}=${raw}: quote this value in single quotes`);
  return raw;
}

/** Every `### heading` under "## Worked configurations" with the env of its `sh` block. */
function workedConfigurations(markdown: string): Map<string, Record<string, string>> {
  const lines = markdown.split('\n');
  const start = lines.indexOf('## Worked configurations');
  if (start < 0) throw new Error('docs/upstreams.md has no "## Worked configurations"');
  const out = new Map<string, Record<string, string>>();
  let heading: string | undefined;
  let env: Record<string, string> | undefined;
  for (let i = start + 1; i < lines.length && !lines[i]!.startsWith('## '); i++) {
    const line = lines[i]!;
    if (line.startsWith('### ')) {
      heading = line.slice(4).trim();
      if (out.has(heading)) throw new Error(`"${heading}" appears twice`);
    } else if (env !== undefined) {
      if (line.startsWith('```')) {
        out.set(heading!, env);
        env = undefined;
        continue;
      }
      const t = line.trim();
      if (t === '' || t.startsWith('#')) continue;
      const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(t);
      if (!m) throw new Error(`"${heading}": "${t}" is not NAME=value`);
      if (m[1]! in env) throw new Error(`"${heading}": ${m[1]} is set twice`);
      env[m[1]!] = shellValue(m[1]!, m[2]!);
    } else if (line.startsWith('```sh')) {
      if (heading === undefined) throw new Error('an sh block before the first heading');
      if (out.has(heading)) throw new Error(`"${heading}" has more than one sh block`);
      env = {};
    }
  }
  if (env !== undefined) throw new Error(`"${heading}": its sh block is not closed`);
  return out;
}

// ---------------------------------------------------------------------------------------
// What each vendor documents (URLs, messages, reply shapes), for the pairs on the page

interface Fixture {
  file: string;
  /** The pair whose reply or message the fixture is. */
  pair: string;
  /** The keys the vendor documents, by path ('' is the whole document). */
  keys: Record<string, string[]>;
  /** Values in the reply that name the pair, by path. */
  names: Record<string, string>;
  /** Where the reply names the pair in the vendor's spelling of symbols; undefined: nowhere. */
  symbolPath?: string;
  price: number;
  /** The reply's own time; undefined: the vendor gives none (the node's clock). */
  atMs?: number;
}

interface HttpVendor {
  kind: 'http';
  /** The URL the vendor documents for each pair on the page. */
  urls: Record<string, string>;
  /** Requests per second the vendor allows (per IP or key); undefined: none published. */
  maxDocumentedRps?: number;
  fixture: Fixture;
}

interface WebSocketVendor {
  kind: 'websocket';
  url: string;
  /** The subscribe and unsubscribe messages for each pair; undefined: none sent. */
  subscribe?: Record<string, unknown>;
  unsubscribe?: Record<string, unknown>;
  /** The streams a fixed URL must name, one per pair. */
  urlStreams?: Record<string, string>;
  fixture: Fixture;
}

type Vendor = HttpVendor | WebSocketVendor;

const FRANKFURTER_PAIRS = {
  EUR_USD: ['EUR', 'USD'],
  USD_HKD: ['USD', 'HKD'],
  GBP_JPY: ['GBP', 'JPY'],
};

const frankfurterFixture = (file: string, keys: string[], names: Record<string, string>) => ({
  file,
  pair: 'USD_HKD',
  keys: { '': keys },
  names,
  price: 7.7814,
  atMs: Date.parse('2026-12-04T00:00:00Z'),
});

/** Binance's documented 24hrTicker event fields. */
const BINANCE_TICKER_KEYS = 'e E s p P w x c Q b B a A o h l v q O C F L n'.split(' ');

/** Binance's SUBSCRIBE/UNSUBSCRIBE request: `id` a 64-bit integer, a short string or null. */
const binanceRequest = (method: string, stream: string) => ({
  method,
  params: [stream],
  id: expect.anything() as unknown,
});

const VENDORS: Record<string, Vendor> = {
  'Frankfurter (ECB reference rates)': {
    kind: 'http',
    urls: Object.fromEntries(
      Object.entries(FRANKFURTER_PAIRS).map(([pair, [b, q]]) => [
        pair,
        `https://api.frankfurter.dev/v2/rate/${b}/${q}?providers=ECB`,
      ]),
    ),
    fixture: frankfurterFixture('frankfurter-v2-rate.json', ['date', 'base', 'quote', 'rate'], {
      base: 'USD',
      quote: 'HKD',
    }),
  },
  'Frankfurter v1 (ECB reference rates)': {
    kind: 'http',
    urls: Object.fromEntries(
      Object.entries(FRANKFURTER_PAIRS).map(([pair, [b, q]]) => [
        pair,
        `https://api.frankfurter.dev/v1/latest?base=${b}&symbols=${q}`,
      ]),
    ),
    fixture: frankfurterFixture('frankfurter-v1-latest.json', ['amount', 'base', 'date', 'rates'], {
      base: 'USD',
    }),
  },
  'Coinbase (spot price)': {
    kind: 'http',
    urls: {
      BTC_USD: 'https://api.coinbase.com/v2/prices/BTC-USD/spot',
      ETH_USD: 'https://api.coinbase.com/v2/prices/ETH-USD/spot',
    },
    // 10,000 requests per hour per API key.
    maxDocumentedRps: 10_000 / 3600,
    fixture: {
      file: 'coinbase-spot.json',
      pair: 'BTC_USD',
      keys: { '': ['data'], data: ['amount', 'base', 'currency'] },
      names: { 'data.base': 'BTC', 'data.currency': 'USD' },
      price: 91433.18,
    },
  },
  'Binance (spot price)': {
    kind: 'http',
    urls: {
      BTC_USDT: 'https://api.binance.com/api/v3/ticker/price?symbol=BTCUSDT',
      ETH_USDT: 'https://api.binance.com/api/v3/ticker/price?symbol=ETHUSDT',
    },
    // Request weight 6,000 per minute per IP (the documented example); this request weighs 2.
    maxDocumentedRps: 6000 / 60 / 2,
    fixture: {
      file: 'binance-ticker-price.json',
      pair: 'BTC_USDT',
      keys: { '': ['symbol', 'price'] },
      names: { symbol: 'BTCUSDT' },
      symbolPath: 'symbol',
      price: 91418.27,
    },
  },
  'Binance (ticker stream, WebSocket)': {
    kind: 'websocket',
    url: 'wss://stream.binance.com:9443/ws',
    subscribe: {
      BTC_USDT: binanceRequest('SUBSCRIBE', 'btcusdt@ticker'),
      ETH_USDT: binanceRequest('SUBSCRIBE', 'ethusdt@ticker'),
    },
    unsubscribe: {
      BTC_USDT: binanceRequest('UNSUBSCRIBE', 'btcusdt@ticker'),
      ETH_USDT: binanceRequest('UNSUBSCRIBE', 'ethusdt@ticker'),
    },
    fixture: {
      file: 'binance-ws-ticker.json',
      pair: 'BTC_USDT',
      keys: { '': BINANCE_TICKER_KEYS },
      names: { s: 'BTCUSDT', e: '24hrTicker' },
      symbolPath: 's',
      price: 91421.83,
      atMs: 1796634930123,
    },
  },
  'Binance (ticker streams, fixed list, WebSocket)': {
    kind: 'websocket',
    url: 'wss://stream.binance.com:9443/stream?streams=btcusdt@ticker/ethusdt@ticker',
    urlStreams: { BTC_USDT: 'btcusdt@ticker', ETH_USDT: 'ethusdt@ticker' },
    fixture: {
      file: 'binance-ws-combined-ticker.json',
      pair: 'ETH_USDT',
      keys: { '': ['stream', 'data'], data: BINANCE_TICKER_KEYS },
      names: { stream: 'ethusdt@ticker', 'data.s': 'ETHUSDT', 'data.e': '24hrTicker' },
      symbolPath: 'data.s',
      price: 3127.46,
      atMs: 1796634931457,
    },
  },
};

// ---------------------------------------------------------------------------------------

const CONFIGS = workedConfigurations(PAGE);

function load(heading: string) {
  const env = CONFIGS.get(heading);
  if (env === undefined) throw new Error(`docs/upstreams.md has no "### ${heading}"`);
  const pairs = listOf(pairSchema).parse(env.NODE_CURRENCY_PAIRS);
  const config = loadUpstreamConfig(env, pairs);
  const vars = (pair: string): PairVars => pairVars(pair, config.symbolTemplate, config.symbols);
  return { env, pairs, config, vars };
}

function readFixture(file: string): unknown {
  return JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as unknown;
}

function extract(config: UpstreamConfig, doc: unknown, vars: PairVars, nowMs = NOW_MS) {
  return extractQuote(
    doc,
    {
      pricePath: fillTemplate(config.pricePath, vars),
      timePath: config.timePath === undefined ? undefined : fillTemplate(config.timePath, vars),
      maxAgeMs: config.maxAgeMs,
      maxFutureMs: MAX_FUTURE_MS,
    },
    nowMs,
  );
}

describe('docs/upstreams.md', () => {
  it('has one sh block for each worked configuration, and this test knows every one', () => {
    expect([...CONFIGS.keys()].sort()).toEqual(Object.keys(VENDORS).sort());
  });

  it('states the defaults and limits the node uses', () => {
    const row = (name: string) => {
      const m = new RegExp(`^\\| \`${name}\` +\\| ([^|]*?) +\\|`, 'm').exec(PAGE);
      if (!m) throw new Error(`no table row for ${name}`);
      return m[1];
    };
    expect(row('NODE_UPSTREAM')).toBe(`\`${UPSTREAM_DEFAULTS.kind}\``);
    expect(row('NODE_UPSTREAM_SYMBOL')).toBe(`\`${UPSTREAM_DEFAULTS.symbol}\``);
    expect(row('NODE_UPSTREAM_TIMEOUT_MS')).toBe(`\`${UPSTREAM_DEFAULTS.timeoutMs}\``);
    expect(row('NODE_UPSTREAM_MAX_RPS')).toBe(`\`${UPSTREAM_DEFAULTS.maxRps}\``);
    expect(row('NODE_UPSTREAM_FAIL_AFTER_MS')).toBe(`\`${UPSTREAM_DEFAULTS.failAfterMs}\``);
    expect(UPSTREAM_DEFAULTS.maxBodyBytes).toBe(1_048_576);
    const prose = PAGE.replace(/\s+/g, ' ');
    expect(prose).toContain('1 MiB, that is 1,048,576 bytes');
    expect(MAX_FUTURE_MS).toBe(5000);
    expect(prose).toContain('more than **5 seconds** ahead');
  });
});

describe.each(Object.entries(VENDORS))('the worked configuration "%s"', (heading, vendor) => {
  it('is accepted by the node and picks the documented kind of upstream', () => {
    const { config } = load(heading);
    expect(config.kind).toBe(vendor.kind);
  });

  it('polls or streams its pairs slowly enough for the vendor and fast enough for the controller', () => {
    const { env, pairs, config } = load(heading);
    const interval = intervalSchema.parse(env.NODE_PRICE_INTERVAL_MS);
    // One missed read must not make the controller call the streamer stale.
    expect(interval.maxMs * 2).toBeLessThanOrEqual(
      Number(CONTROLLER_DEFAULTS.CONTROLLER_STALE_STREAM_MS),
    );
    // A single read that fails between two good ones must not withdraw the pair.
    expect(config.failAfterMs).toBeGreaterThan(interval.maxMs);
    if (vendor.kind === 'http') {
      expect((pairs.length * 1000) / interval.minMs).toBeLessThanOrEqual(config.maxRps);
      if (vendor.maxDocumentedRps !== undefined)
        expect(config.maxRps).toBeLessThan(vendor.maxDocumentedRps);
    }
  });

  if (vendor.kind === 'http') {
    it("makes the vendor's documented URL for each of its pairs", () => {
      const { pairs, config, vars } = load(heading);
      const made = Object.fromEntries(
        pairs.map((p) => [p, fillTemplate(config.url, vars(p), encodeURIComponent)]),
      );
      expect(made).toEqual(vendor.urls);
    });
  } else {
    it("connects to the vendor's documented URL", () => {
      const { pairs, config, vars } = load(heading);
      expect(config.url).toBe(vendor.url);
      if (vendor.urlStreams) {
        const streams = new URL(config.url).searchParams.get('streams')?.split('/');
        expect(streams?.sort()).toEqual(Object.values(vendor.urlStreams).sort());
        expect(Object.keys(vendor.urlStreams).sort()).toEqual([...pairs].sort());
        // Each named stream is that pair's symbol, as the vendor spells streams.
        for (const p of pairs)
          expect(vendor.urlStreams[p]).toBe(`${vars(p).symbol.toLowerCase()}@ticker`);
      }
    });

    it('sends the documented subscribe and unsubscribe messages, valid JSON, per pair', () => {
      const { pairs, config, vars } = load(heading);
      const messages = (template: string | undefined) =>
        template === undefined
          ? undefined
          : Object.fromEntries(
              pairs.map((p) => [
                p,
                JSON.parse(fillTemplate(template, vars(p), jsonStringContent)) as unknown,
              ]),
            );
      expect(messages(config.subscribe)).toEqual(vendor.subscribe);
      expect(messages(config.unsubscribe)).toEqual(vendor.unsubscribe);
      for (const msg of Object.values(messages(config.subscribe) ?? {})) {
        const id = (msg as { id: unknown }).id;
        expect(
          Number.isSafeInteger(id) || id === null || /^[A-Za-z0-9]{1,36}$/.test(String(id)),
        ).toBe(true);
      }
    });
  }

  it('checks the symbol where the vendor names it, and the fixture names its pair only', () => {
    const { pairs, config, vars } = load(heading);
    expect(config.symbolPath).toBe(vendor.fixture.symbolPath);
    if (config.symbolPath === undefined) return;
    const doc = readFixture(vendor.fixture.file);
    const named = getPath(doc, fillTemplate(config.symbolPath, vars(vendor.fixture.pair)));
    expect(typeof named).toBe('string');
    const matches = pairs.filter(
      (p) => vars(p).symbol.toLowerCase() === (named as string).toLowerCase(),
    );
    expect(matches).toEqual([vendor.fixture.pair]);
  });

  it('has a fixture in the shape the vendor documents', () => {
    const { pairs } = load(heading);
    const doc = readFixture(vendor.fixture.file);
    expect(pairs).toContain(vendor.fixture.pair);
    for (const [path, keys] of Object.entries(vendor.fixture.keys)) {
      const at = path === '' ? doc : getPath(doc, path);
      expect(Object.keys(at as object).sort()).toEqual([...keys].sort());
    }
    for (const [path, value] of Object.entries(vendor.fixture.names))
      expect(getPath(doc, path)).toBe(value);
  });

  it("reads the fixture's price and time", () => {
    const { config, vars } = load(heading);
    const got = extract(config, readFixture(vendor.fixture.file), vars(vendor.fixture.pair));
    const { price, atMs } = vendor.fixture;
    expect(got).toEqual({
      ok: true,
      quote:
        atMs === undefined
          ? { price, atMs: NOW_MS, ownClock: true }
          : { price, atMs, ownClock: false },
    });
  });
});

describe('what docs/upstreams.md warns about', () => {
  it('a Frankfurter rate dated tomorrow (a blend without providers=ECB) is refused as future', () => {
    const { config, vars } = load('Frankfurter (ECB reference rates)');
    const doc = { date: '2026-12-08', base: 'USD', quote: 'HKD', rate: 7.7814 };
    const got = extract(config, doc, vars('USD_HKD'));
    expect(got).toMatchObject({ ok: false, outcome: 'future' });
  });

  it("Binance's 24hrTicker `p` is the price change, so the stream configuration reads `c`", () => {
    const { config } = load('Binance (ticker stream, WebSocket)');
    const doc = readFixture('binance-ws-ticker.json');
    expect(config.pricePath).toBe('c');
    expect(getPath(doc, 'p')).not.toBe(getPath(doc, 'c'));
  });

  it('the Binance stream configuration gives every pair a lower-case symbol, as stream names must be', () => {
    const { pairs, config } = load('Binance (ticker stream, WebSocket)');
    expect(Object.keys(config.symbols).sort()).toEqual([...pairs].sort());
    for (const symbol of Object.values(config.symbols)) expect(symbol).toBe(symbol.toLowerCase());
  });
});
