import { hostname } from 'node:os';
import { ConfigError, type Env } from '../shared/config';
import {
  NODE_DEFAULTS,
  NODE_TIMING_DEFAULTS,
  intervalSchema,
  loadNodeConfig,
  withNodeTimingDefaults,
} from './config';
import { nodeVariables } from './help';

const PAIRS = { NODE_CURRENCY_PAIRS: 'USD_HKD,BTC_USD' };
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function configError(env: Env): ConfigError {
  try {
    loadNodeConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, got none');
}

describe('loadNodeConfig defaults', () => {
  test('with only the pairs set every other value takes its documented default', () => {
    const c = loadNodeConfig(PAIRS);
    expect(c).toEqual({
      controllerAddrs: [{ host: 'localhost', port: 5160 }],
      pairs: ['USD_HKD', 'BTC_USD'],
      uuid: expect.stringMatching(UUID_V4),
      name: hostname(),
      priceIntervalMs: { minMs: 2000, maxMs: 10000 },
      metricsAddr: { host: '0.0.0.0', port: 9464 },
      logLevel: 'info',
      reconnectInitialMs: 100,
      reconnectMaxMs: 2000,
      connectTimeoutMs: 10_000,
      priceSpanSampleRatio: 0.01,
      upstream: {
        kind: 'simulated',
        url: '',
        symbolTemplate: '{base}{quote}',
        symbols: {},
        pricePath: '',
        timeoutMs: 3000,
        maxRps: 10,
        failAfterMs: 10000,
        maxBodyBytes: 1048576,
      },
      // Programmatic timings: the loader fills them, so the node never re-applies defaults.
      displacedWaitMs: 30_000,
      displacedJitterMs: 15_000,
      headerWaitMs: 1000,
    });
  });

  test('without NODE_UUID each start gets a fresh random UUID', () => {
    expect(loadNodeConfig(PAIRS).uuid).not.toBe(loadNodeConfig(PAIRS).uuid);
  });

  test('NODE_CURRENCY_PAIRS is required', () => {
    const e = configError({});
    expect(e.variable).toBe('NODE_CURRENCY_PAIRS');
    expect(e.message).toBe('NODE_CURRENCY_PAIRS: is required but not set');
  });

  test('a blank NODE_CURRENCY_PAIRS counts as not set', () => {
    expect(configError({ NODE_CURRENCY_PAIRS: '  ' }).message).toContain('is required');
  });
});

describe('loadNodeConfig values', () => {
  test('pairs are trimmed and duplicates dropped, keeping the first order', () => {
    const c = loadNodeConfig({ NODE_CURRENCY_PAIRS: ' BTC_USD, USD_HKD ,BTC_USD,' });
    expect(c.pairs).toEqual(['BTC_USD', 'USD_HKD']);
  });

  test('NODE_UUID is kept in canonical lower case', () => {
    const c = loadNodeConfig({ ...PAIRS, NODE_UUID: '3F2B8C1E-8D3A-4B7E-9C2F-1A2B3C4D5E6F' });
    expect(c.uuid).toBe('3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f');
  });

  test('a comma-separated NODE_CONTROLLER_ADDR gives every address in order', () => {
    const c = loadNodeConfig({
      ...PAIRS,
      NODE_CONTROLLER_ADDR: 'controller-a:5160, controller-b:6000,[::1]:5160',
    });
    expect(c.controllerAddrs).toEqual([
      { host: 'controller-a', port: 5160 },
      { host: 'controller-b', port: 6000 },
      { host: '[::1]', port: 5160 },
    ]);
  });

  test('an IPv6 controller address in brackets is accepted', () => {
    const c = loadNodeConfig({ ...PAIRS, NODE_CONTROLLER_ADDR: '[::1]:5160' });
    expect(c.controllerAddrs).toEqual([{ host: '[::1]', port: 5160 }]);
  });

  test('a single interval N means exactly N milliseconds', () => {
    expect(loadNodeConfig({ ...PAIRS, NODE_PRICE_INTERVAL_MS: '5000' }).priceIntervalMs).toEqual({
      minMs: 5000,
      maxMs: 5000,
    });
  });

  test('an interval MIN-MAX may have spaces and MIN equal to MAX', () => {
    expect(intervalSchema.parse(' 100 - 200 ')).toEqual({ minMs: 100, maxMs: 200 });
    expect(intervalSchema.parse('300-300')).toEqual({ minMs: 300, maxMs: 300 });
  });

  test('name, log level, metrics address and reconnect timing are read', () => {
    const c = loadNodeConfig({
      ...PAIRS,
      NODE_NAME: 'edge-1',
      LOG_LEVEL: 'warn',
      METRICS_ADDR: '127.0.0.1:0',
      NODE_RECONNECT_INITIAL_MS: '50',
      NODE_RECONNECT_MAX_MS: '50',
      NODE_CONNECT_TIMEOUT_MS: '2500',
    });
    expect(c).toMatchObject({
      name: 'edge-1',
      logLevel: 'warn',
      metricsAddr: { host: '127.0.0.1', port: 0 },
      reconnectInitialMs: 50,
      reconnectMaxMs: 50,
      connectTimeoutMs: 2500,
    });
  });
});

describe('loadNodeConfig invalid values stop with a ConfigError naming the variable', () => {
  test.each<[string, Env, string]>([
    ['a lower-case pair with a dash', { NODE_CURRENCY_PAIRS: 'usd-hkd' }, 'BASE_QUOTE'],
    ['one bad pair among good ones', { NODE_CURRENCY_PAIRS: 'USD_HKD,usd-hkd' }, 'BASE_QUOTE'],
    ['a list of only commas', { NODE_CURRENCY_PAIRS: ',,' }, 'must list at least one value'],
  ])('NODE_CURRENCY_PAIRS: %s', (_, env, says) => {
    const e = configError(env);
    expect(e.variable).toBe('NODE_CURRENCY_PAIRS');
    expect(e.message).toContain(says);
  });

  test.each(['node-1', '3f2b8c1e8d3a4b7e9c2f1a2b3c4d5e6f', '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6'])(
    'NODE_UUID %p is not a UUID',
    (uuid) => {
      const e = configError({ ...PAIRS, NODE_UUID: uuid });
      expect(e.variable).toBe('NODE_UUID');
      expect(e.message).toContain(`"${uuid}"`);
      expect(e.message).toContain('must be a UUID');
    },
  );

  test.each([
    ['controller:70000', 'port 70000 is out of range 1-65535'],
    ['controller:0', 'port 0 is out of range 1-65535'],
    ['controller', 'is not HOST:PORT'],
    ['a:1,b:0', 'port 0 is out of range'],
  ])('NODE_CONTROLLER_ADDR %p: %s', (addr, says) => {
    const e = configError({ ...PAIRS, NODE_CONTROLLER_ADDR: addr });
    expect(e.variable).toBe('NODE_CONTROLLER_ADDR');
    expect(e.message).toContain(says);
  });

  test.each([
    ['10000-2000', 'MIN 10000 is greater than MAX 2000'],
    ['fast', 'expected N or MIN-MAX in milliseconds'],
    ['1.5', 'expected N or MIN-MAX in milliseconds'],
    ['-5', 'expected N or MIN-MAX in milliseconds'],
    ['100-', 'expected N or MIN-MAX in milliseconds'],
    ['0', 'interval must be at least 1 ms'],
    ['0-10', 'interval must be at least 1 ms'],
  ])('NODE_PRICE_INTERVAL_MS %p: %s', (value, says) => {
    const e = configError({ ...PAIRS, NODE_PRICE_INTERVAL_MS: value });
    expect(e.variable).toBe('NODE_PRICE_INTERVAL_MS');
    expect(e.message).toContain(says);
  });

  test('METRICS_ADDR with a port out of range', () => {
    const e = configError({ ...PAIRS, METRICS_ADDR: '0.0.0.0:70000' });
    expect(e.variable).toBe('METRICS_ADDR');
    expect(e.message).toContain('port 70000 is out of range 0-65535');
  });

  test('LOG_LEVEL that pino does not know', () => {
    const e = configError({ ...PAIRS, LOG_LEVEL: 'verbose' });
    expect(e.variable).toBe('LOG_LEVEL');
    expect(e.message).toContain('"verbose"');
  });

  test('NODE_NAME longer than 256 characters', () => {
    const e = configError({ ...PAIRS, NODE_NAME: 'n'.repeat(257) });
    expect(e.variable).toBe('NODE_NAME');
    expect(e.message).toContain('at most 256 characters');
  });

  test('NODE_RECONNECT_MAX_MS below NODE_RECONNECT_INITIAL_MS', () => {
    const e = configError({
      ...PAIRS,
      NODE_RECONNECT_INITIAL_MS: '500',
      NODE_RECONNECT_MAX_MS: '100',
    });
    expect(e.variable).toBe('NODE_RECONNECT_MAX_MS');
    expect(e.message).toBe(
      'NODE_RECONNECT_MAX_MS: must be at least NODE_RECONNECT_INITIAL_MS (500)',
    );
  });

  test('NODE_RECONNECT_INITIAL_MS of zero', () => {
    const e = configError({ ...PAIRS, NODE_RECONNECT_INITIAL_MS: '0' });
    expect(e.variable).toBe('NODE_RECONNECT_INITIAL_MS');
    expect(e.message).toContain('must be greater than 0');
  });

  // Node's setTimeout treats any delay above 2^31-1 ms as 1 ms, so an accepted larger
  // value would turn "very slow" into a 1 ms loop (price flood or reconnect storm).
  test.each([
    ['NODE_PRICE_INTERVAL_MS', '3000000000'],
    ['NODE_PRICE_INTERVAL_MS', '1000-3000000000'],
    ['NODE_RECONNECT_MAX_MS', '3000000000'],
    ['NODE_CONNECT_TIMEOUT_MS', '3000000000'],
    ['NODE_CONNECT_TIMEOUT_MS', '0'],
    ['NODE_CONNECT_TIMEOUT_MS', '5s'],
  ])('%s=%p, longer than a timer can wait, is refused', (variable, value) => {
    const e = configError({ ...PAIRS, [variable]: value });
    expect(e.variable).toBe(variable);
  });
});

describe('PRICE_SPAN_SAMPLE_RATIO', () => {
  test('takes a share from 0 to 1', () => {
    expect(loadNodeConfig({ ...PAIRS, PRICE_SPAN_SAMPLE_RATIO: '0.5' }).priceSpanSampleRatio).toBe(
      0.5,
    );
    expect(loadNodeConfig({ ...PAIRS, PRICE_SPAN_SAMPLE_RATIO: '0' }).priceSpanSampleRatio).toBe(0);
  });

  test.each(['1.5', '-0.1', 'often'])('rejects %s naming the variable', (raw) => {
    expect(() => loadNodeConfig({ ...PAIRS, PRICE_SPAN_SAMPLE_RATIO: raw })).toThrow(
      /PRICE_SPAN_SAMPLE_RATIO/,
    );
  });
});

describe('loadNodeConfig security', () => {
  test('with no NODE_TLS_* or NODE_TOKEN* set the node dials in plaintext without a token', () => {
    const c = loadNodeConfig(PAIRS);
    expect(c.tls).toBeUndefined();
    expect(c.token).toBeUndefined();
  });

  test('NODE_TOKEN is taken as the node credential', () => {
    const c = loadNodeConfig({ ...PAIRS, NODE_TOKEN: 'node-secret-0123456789abcdef' });
    expect(c.token).toEqual({ token: 'node-secret-0123456789abcdef' });
  });

  test.each<[Record<string, string>, string]>([
    [{ NODE_TOKEN: 'short' }, 'NODE_TOKEN'],
    [{ NODE_TOKEN_FILE: '/nonexistent/token' }, 'NODE_TOKEN_FILE'],
    [{ NODE_TLS_CERT_FILE: '/x/node.pem', NODE_TLS_KEY_FILE: '/x/node.key' }, 'NODE_TLS_CA_FILE'],
    [{ NODE_TLS_CA_FILE: '/nonexistent/ca.pem' }, 'NODE_TLS_CA_FILE'],
  ])('%j stops the node naming %s', (env, variable) => {
    expect(configError({ ...PAIRS, ...env }).variable).toBe(variable);
  });
});

describe('NODE_NAME is for people: any Unicode, no control characters', () => {
  test.each(['Zürich-1', '東京', 'edge 1'])('%p is kept as it is', (name) => {
    expect(loadNodeConfig({ ...PAIRS, NODE_NAME: name }).name).toBe(name);
  });

  test('surrounding white space is trimmed (a header value cannot carry it)', () => {
    expect(loadNodeConfig({ ...PAIRS, NODE_NAME: '  edge-1\u00a0 ' }).name).toBe('edge-1');
  });

  test.each([
    ['a tab', 'edge\t1'],
    ['a newline', 'edge\n1'],
    ['a carriage return', 'edge\r1'],
    ['ESC', 'edge\u001b[2J'],
    ['NUL', 'edge\u00001'],
    ['DEL', 'edge\u007f1'],
    ['a C1 control (CSI)', 'edge\u009b1'],
  ])('%s stops the node naming NODE_NAME', (_what, name) => {
    const e = configError({ ...PAIRS, NODE_NAME: name });
    expect(e.variable).toBe('NODE_NAME');
    expect(e.message).toContain('control character');
  });
});

describe('NODE_DEFAULTS, the one table of defaults (--help shows it)', () => {
  test('setting a variable to its listed default changes nothing: the loader applies exactly that default', () => {
    const base = { ...PAIRS, NODE_UUID: '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f' };
    const unset = loadNodeConfig(base);
    for (const [name, value] of Object.entries(NODE_DEFAULTS))
      expect([name, loadNodeConfig({ ...base, [name]: value })]).toEqual([name, unset]);
  });

  test('--help lists every default from the table, and no host name of the build machine', () => {
    const listed = nodeVariables();
    for (const [name, value] of Object.entries(NODE_DEFAULTS))
      expect(listed.find((v) => v.name === name)?.default).toBe(value);
    expect(listed.find((v) => v.name === 'NODE_NAME')?.default).toBeUndefined();
  });
});

describe('withNodeTimingDefaults', () => {
  test('a config built by hand gets the timings it does not give, and keeps those it does', () => {
    const c = withNodeTimingDefaults({ ...loadNodeConfig(PAIRS), headerWaitMs: 100 });
    expect([c.displacedWaitMs, c.displacedJitterMs, c.headerWaitMs]).toEqual([30_000, 15_000, 100]);
    const { connectTimeoutMs: _c, ...noBound } = loadNodeConfig(PAIRS);
    expect(withNodeTimingDefaults(noBound).connectTimeoutMs).toBe(10_000);
    const {
      displacedWaitMs: _w,
      displacedJitterMs: _j,
      headerWaitMs: _h,
      ...bare
    } = loadNodeConfig(PAIRS);
    expect(withNodeTimingDefaults({ ...bare, displacedJitterMs: undefined })).toMatchObject(
      NODE_TIMING_DEFAULTS,
    );
  });
});
