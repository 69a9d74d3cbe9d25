import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configError } from '../../tests/support/fakes';
import { loadControllerConfig } from './config';

describe('loadControllerConfig', () => {
  test('with nothing set every value takes its documented default', () => {
    expect(loadControllerConfig({})).toMatchObject({
      listenAddr: { host: '0.0.0.0', port: 5160 },
      streamsPerPair: 1,
      metricsAddr: { host: '0.0.0.0', port: 9464 },
      logLevel: 'info',
      shutdownGraceMs: 5000,
      maxMessageBytes: 4 * 1024 * 1024,
      limits: {
        maxNodes: 20000,
        maxPairsPerNode: 1000,
        maxCliStreams: 1000,
        maxPendingPerCli: 1000,
        maxQueuedMessages: 1000,
        slowWatcherMs: 10000,
        maxKnownPairs: 10000,
        registerTimeoutMs: 10000,
        staleStreamMs: 30000,
        forgetPairAfterMs: 3600000,
        maxPriceSkewMs: 5000,
      },
      reflection: true,
      security: { tls: undefined, auth: undefined, credentialsReloadMs: 5000 },
    });
  });

  test('reads every variable that is set', () => {
    const c = loadControllerConfig({
      CONTROLLER_LISTEN_ADDR: '127.0.0.1:0',
      CONTROLLER_STREAMS_PER_PAIR: '3',
      METRICS_ADDR: '[::1]:9000',
      LOG_LEVEL: 'debug',
      CONTROLLER_MAX_MESSAGE_BYTES: '65536',
      CONTROLLER_MAX_NODES: '10',
      CONTROLLER_MAX_PAIRS_PER_NODE: '20',
      CONTROLLER_MAX_CLI_STREAMS: '30',
      CONTROLLER_MAX_PENDING_PER_CLI: '40',
      CONTROLLER_MAX_QUEUED_MESSAGES: '50',
      CONTROLLER_SLOW_WATCHER_MS: '60',
      CONTROLLER_SHUTDOWN_GRACE_MS: '250',
      CONTROLLER_MAX_KNOWN_PAIRS: '70',
      CONTROLLER_REGISTER_TIMEOUT_MS: '80',
      CONTROLLER_STALE_STREAM_MS: '90',
      CONTROLLER_FORGET_PAIR_AFTER_MS: '100',
      CONTROLLER_MAX_PRICE_SKEW_MS: '110',
      CONTROLLER_REFLECTION: 'off',
    });
    expect(c).toMatchObject({
      listenAddr: { host: '127.0.0.1', port: 0 },
      streamsPerPair: 3,
      metricsAddr: { host: '[::1]', port: 9000 },
      logLevel: 'debug',
      shutdownGraceMs: 250,
      maxMessageBytes: 65536,
      limits: {
        maxNodes: 10,
        maxPairsPerNode: 20,
        maxCliStreams: 30,
        maxPendingPerCli: 40,
        maxQueuedMessages: 50,
        slowWatcherMs: 60,
        maxKnownPairs: 70,
        registerTimeoutMs: 80,
        staleStreamMs: 90,
        forgetPairAfterMs: 100,
        maxPriceSkewMs: 110,
      },
      reflection: false,
    });
  });

  test.each([
    ['CONTROLLER_STREAMS_PER_PAIR', '0', 'must be greater than 0'],
    ['CONTROLLER_STREAMS_PER_PAIR', '-2', 'must be greater than 0'],
    ['CONTROLLER_STREAMS_PER_PAIR', '1.5', 'must be a whole number'],
    ['CONTROLLER_STREAMS_PER_PAIR', 'two', 'must be a whole number'],
    ['CONTROLLER_STREAMS_PER_PAIR', '0x2', 'decimal digits'],
    ['CONTROLLER_STREAMS_PER_PAIR', '2e0', 'decimal digits'],
    ['CONTROLLER_STREAMS_PER_PAIR', '+2', 'decimal digits'],
    ['CONTROLLER_MAX_NODES', '1_000', 'decimal digits'],
    ['CONTROLLER_STALE_STREAM_MS', '0', 'must be greater than 0'],
    ['CONTROLLER_MAX_PRICE_SKEW_MS', '5s', 'decimal digits'],
    ['CONTROLLER_MAX_KNOWN_PAIRS', '-1', 'must be greater than 0'],
    ['CONTROLLER_LISTEN_ADDR', '0.0.0.0:70000', 'port 70000 is out of range 0-65535'],
    ['CONTROLLER_LISTEN_ADDR', '5160', 'is not HOST:PORT'],
    ['METRICS_ADDR', '0.0.0.0:99999', 'port 99999 is out of range'],
    ['LOG_LEVEL', 'verbose', 'verbose'],
    ['CONTROLLER_SHUTDOWN_GRACE_MS', '0', 'must be greater than 0'],
  ])(
    '%s=%p stops with a ConfigError naming the variable and saying %p',
    (variable, value, says) => {
      const e = configError(() => loadControllerConfig({ [variable]: value }));
      expect(e.variable).toBe(variable);
      expect(e.message.startsWith(`${variable}: `)).toBe(true);
      expect(e.message).toContain(`"${value}"`);
      expect(e.message).toContain(says);
    },
  );

  test('the metrics web config is re-read every CONTROLLER_CREDENTIALS_RELOAD_MS, like the other credentials', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cn-webcfg-'));
    try {
      const file = join(dir, 'web.yml');
      writeFileSync(file, '');
      const c = loadControllerConfig({
        METRICS_WEB_CONFIG_FILE: file,
        CONTROLLER_CREDENTIALS_RELOAD_MS: '750',
      });
      expect(c.metricsWebConfig).toEqual({ file, probesOpen: false, reloadMs: 750 });
      expect(
        loadControllerConfig({ METRICS_WEB_CONFIG_FILE: file }).metricsWebConfig?.reloadMs,
      ).toBe(5000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a bad LOG_LEVEL message lists the levels that are allowed', () => {
    const e = configError(() => loadControllerConfig({ LOG_LEVEL: 'loud' }));
    expect(e.message).toMatch(/info/);
    expect(e.message).toMatch(/debug/);
  });

  // Node's setTimeout treats any delay above 2^31-1 ms as 1 ms: a grace period that long
  // would silently become no grace at all.
  test('a CONTROLLER_SHUTDOWN_GRACE_MS longer than a timer can wait is refused', () => {
    const e = configError(() =>
      loadControllerConfig({ CONTROLLER_SHUTDOWN_GRACE_MS: '3000000000' }),
    );
    expect(e.variable).toBe('CONTROLLER_SHUTDOWN_GRACE_MS');
  });
});
