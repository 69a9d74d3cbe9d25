import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../shared/config';
import { loadUpstreamConfig } from './config';

const PAIRS = ['USD_HKD', 'BTC_USD'];
const HTTP = {
  NODE_UPSTREAM: 'http',
  NODE_UPSTREAM_URL: 'https://api.example.test/v1/{symbol}',
  NODE_UPSTREAM_PRICE_PATH: 'price',
};
const WS = {
  NODE_UPSTREAM: 'websocket',
  NODE_UPSTREAM_URL: 'wss://stream.example.test/ws',
  NODE_UPSTREAM_PRICE_PATH: 'p',
  NODE_UPSTREAM_SYMBOL_PATH: 's',
};

function problem(env: Record<string, string>): ConfigError {
  try {
    loadUpstreamConfig(env, PAIRS);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError, got none');
}

test('unset, the upstream is the simulated market with the documented defaults', () => {
  expect(loadUpstreamConfig({}, PAIRS)).toMatchObject({
    kind: 'simulated',
    timeoutMs: 3000,
    maxRps: 10,
    failAfterMs: 10000,
  });
});

test('an http upstream takes its templates, per-pair symbols and limits', () => {
  const c = loadUpstreamConfig(
    {
      ...HTTP,
      NODE_UPSTREAM_SYMBOLS: 'BTC_USD=BTCUSDT, USD_HKD=USDHKD',
      NODE_UPSTREAM_TIME_PATH: 'data.time',
      NODE_UPSTREAM_MAX_RPS: '0.5',
      NODE_UPSTREAM_MAX_AGE_MS: '60000',
    },
    PAIRS,
  );
  expect(c).toMatchObject({
    kind: 'http',
    symbols: { BTC_USD: 'BTCUSDT', USD_HKD: 'USDHKD' },
    timePath: 'data.time',
    maxRps: 0.5,
    maxAgeMs: 60000,
  });
});

test.each([
  [{ NODE_UPSTREAM: 'ftp' }, 'NODE_UPSTREAM'],
  [{ NODE_UPSTREAM: 'http' }, 'NODE_UPSTREAM_URL'],
  [{ ...HTTP, NODE_UPSTREAM_URL: 'wss://x.test/{symbol}' }, 'NODE_UPSTREAM_URL'],
  [{ ...HTTP, NODE_UPSTREAM_URL: 'https://user:pw@x.test/{symbol}' }, 'NODE_UPSTREAM_URL'],
  [{ ...HTTP, NODE_UPSTREAM_URL: 'https://x.test/{ticker}' }, 'NODE_UPSTREAM_URL'],
  [{ ...HTTP, NODE_UPSTREAM_PRICE_PATH: 'data..amount' }, 'NODE_UPSTREAM_PRICE_PATH'],
  [{ ...HTTP, NODE_UPSTREAM_PRICE_PATH: '' }, 'NODE_UPSTREAM_PRICE_PATH'],
  [{ ...HTTP, NODE_UPSTREAM_TIME_PATH: 'times.{qoute}' }, 'NODE_UPSTREAM_TIME_PATH'],
  [{ ...WS, NODE_UPSTREAM_SYMBOL_PATH: 'data.{sym}' }, 'NODE_UPSTREAM_SYMBOL_PATH'],
  [{ ...HTTP, NODE_UPSTREAM_SYMBOLS: 'btc-usd=X' }, 'NODE_UPSTREAM_SYMBOLS'],
  [{ ...HTTP, NODE_UPSTREAM_SYMBOL: '{base}{currency}' }, 'NODE_UPSTREAM_SYMBOL'],
  [{ ...HTTP, NODE_UPSTREAM_TIMEOUT_MS: '1e3' }, 'NODE_UPSTREAM_TIMEOUT_MS'],
  [{ ...HTTP, NODE_UPSTREAM_MAX_RPS: '0' }, 'NODE_UPSTREAM_MAX_RPS'],
  [{ ...HTTP, NODE_UPSTREAM_FAIL_AFTER_MS: '50' }, 'NODE_UPSTREAM_FAIL_AFTER_MS'],
  [{ ...HTTP, NODE_UPSTREAM_SUBSCRIBE: '{"op":"sub"}' }, 'NODE_UPSTREAM_SUBSCRIBE'],
  [{ ...HTTP, NODE_UPSTREAM_HEADERS_FILE: '/nonexistent/headers' }, 'NODE_UPSTREAM_HEADERS_FILE'],
  [{ ...HTTP, NODE_UPSTREAM_CA_FILE: '/nonexistent/ca.pem' }, 'NODE_UPSTREAM_CA_FILE'],
  [{ ...WS, NODE_UPSTREAM_URL: 'https://x.test/ws' }, 'NODE_UPSTREAM_URL'],
  [{ ...WS, NODE_UPSTREAM_URL: 'wss://x.test/ws/{symbol}' }, 'NODE_UPSTREAM_URL'],
  [{ ...WS, NODE_UPSTREAM_SYMBOL_PATH: '' }, 'NODE_UPSTREAM_SYMBOL_PATH'],
  [{ NODE_UPSTREAM_URL: 'https://x.test/{symbol}' }, 'NODE_UPSTREAM_URL'],
])('%o is refused naming %s', (env, variable) => {
  expect(problem(env).variable).toBe(variable);
});

test('a malformed headers file is refused at start without showing its values', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-headers-'));
  const file = join(dir, 'headers');
  writeFileSync(file, 'X-Api-Key: s3cr3t\nnot a header line s3cr3t\n');
  const e = problem({ ...HTTP, NODE_UPSTREAM_HEADERS_FILE: file });
  expect(e.variable).toBe('NODE_UPSTREAM_HEADERS_FILE');
  expect(e.message).toContain('line 2');
  expect(e.message).not.toContain('s3cr3t');
});
