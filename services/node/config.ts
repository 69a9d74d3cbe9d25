import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  ConfigError,
  MAX_TIMER_MS,
  type Env,
  type HostPort,
  dialAddrSchema,
  listOf,
  listenAddrSchema,
  logLevelSchema,
  pairSchema,
  positiveIntSchema,
  readVar,
  uuidSchema,
} from '../shared/config';
import { type ClientTokenConfig, readClientTokenFromEnv } from '../shared/auth';
import { type ClientTlsConfig, readClientTlsFromEnv } from '../shared/tls-client';
import { type MetricsWebConfigSettings, readMetricsWebConfig } from '../shared/web-config';
import { UPSTREAM_DEFAULTS, type UpstreamConfig, loadUpstreamConfig } from './upstream/config';

export interface IntervalRange {
  minMs: number;
  maxMs: number;
}

export interface NodeConfig extends NodeTimings {
  controllerAddrs: HostPort[];
  pairs: string[];
  uuid: string;
  name: string;
  priceIntervalMs: IntervalRange;
  metricsAddr: HostPort;
  /** METRICS_WEB_CONFIG_FILE: TLS / basic auth on the metrics port (docs/security.md). */
  metricsWebConfig?: MetricsWebConfigSettings;
  logLevel: string;
  reconnectInitialMs: number;
  reconnectMaxMs: number;
  /** NODE_CONNECT_TIMEOUT_MS: a dial with no connection after this long is given up. */
  connectTimeoutMs: number;
  /** Share of price updates that get a span of their own (0..1), when tracing is on. */
  priceSpanSampleRatio: number;
  /** TLS to the controller (NODE_TLS_*); undefined: plaintext. */
  tls?: ClientTlsConfig;
  /** Bearer token (NODE_TOKEN or NODE_TOKEN_FILE, read again on every connect). */
  token?: ClientTokenConfig;
  /** Where prices come from (NODE_UPSTREAM_*, upstream/config.ts); unset: simulated. */
  upstream?: UpstreamConfig;
}

/**
 * Programmatic only (tests shorten them; no variable, so an operator cannot turn the
 * duplicate-UUID wait into a flap): the wait after being displaced by a newer stream with
 * our UUID, its random extra, and how long a new stream waits for the response headers
 * (keepalive permission) before registering. Loaded configs carry NODE_TIMING_DEFAULTS.
 */
export interface NodeTimings {
  displacedWaitMs: number;
  displacedJitterMs: number;
  headerWaitMs: number;
}

export const NODE_TIMING_DEFAULTS = {
  /** Contract: a displaced node waits at least 30 s, so two nodes sharing a UUID settle. */
  displacedWaitMs: 30_000,
  displacedJitterMs: 15_000,
  headerWaitMs: 1000,
} as const satisfies NodeTimings;

/**
 * A NodeConfig built by hand (tests): the timings it does not give, and the connect bound,
 * are the defaults.
 */
export function withNodeTimingDefaults(
  config: Omit<NodeConfig, keyof NodeTimings | 'connectTimeoutMs'> &
    Partial<NodeTimings & Pick<NodeConfig, 'connectTimeoutMs'>>,
): NodeConfig {
  return {
    ...config,
    connectTimeoutMs: config.connectTimeoutMs ?? Number(NODE_DEFAULTS.NODE_CONNECT_TIMEOUT_MS),
    displacedWaitMs: config.displacedWaitMs ?? NODE_TIMING_DEFAULTS.displacedWaitMs,
    displacedJitterMs: config.displacedJitterMs ?? NODE_TIMING_DEFAULTS.displacedJitterMs,
    headerWaitMs: config.headerWaitMs ?? NODE_TIMING_DEFAULTS.headerWaitMs,
  };
}

/** `N` or `MIN-MAX` milliseconds, MIN <= MAX. */
export const intervalSchema = z.string().transform((raw, ctx): IntervalRange => {
  const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(raw);
  if (!m) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected N or MIN-MAX in milliseconds, e.g. 2000-10000',
    });
    return z.NEVER;
  }
  const minMs = Number(m[1]);
  const maxMs = m[2] === undefined ? minMs : Number(m[2]);
  if (maxMs > MAX_TIMER_MS) {
    ctx.addIssue({ code: 'custom', message: `interval must be at most ${MAX_TIMER_MS} ms` });
    return z.NEVER;
  }
  if (minMs < 1) {
    ctx.addIssue({ code: 'custom', message: 'interval must be at least 1 ms' });
    return z.NEVER;
  }
  if (minMs > maxMs) {
    ctx.addIssue({ code: 'custom', message: `MIN ${minMs} is greater than MAX ${maxMs}` });
    return z.NEVER;
  }
  return { minMs, maxMs };
});

/**
 * The defaults of the node's variables, as the operator writes them: the one table that
 * loadNodeConfig reads and `currency-node --help` shows (as the controller's
 * CONTROLLER_DEFAULTS). NODE_UUID (a random UUID v4) and NODE_NAME (the host name) default
 * to values of the running process, so they are not in it.
 */
export const NODE_DEFAULTS = {
  NODE_CONTROLLER_ADDR: 'localhost:5160',
  NODE_PRICE_INTERVAL_MS: '2000-10000',
  NODE_RECONNECT_INITIAL_MS: '100',
  NODE_RECONNECT_MAX_MS: '2000',
  NODE_CONNECT_TIMEOUT_MS: '10000',
  METRICS_ADDR: '0.0.0.0:9464',
  LOG_LEVEL: 'info',
  PRICE_SPAN_SAMPLE_RATIO: '0.01',
  NODE_UPSTREAM: UPSTREAM_DEFAULTS.kind,
  NODE_UPSTREAM_SYMBOL: UPSTREAM_DEFAULTS.symbol,
  NODE_UPSTREAM_TIMEOUT_MS: UPSTREAM_DEFAULTS.timeoutMs,
  NODE_UPSTREAM_MAX_RPS: UPSTREAM_DEFAULTS.maxRps,
  NODE_UPSTREAM_FAIL_AFTER_MS: UPSTREAM_DEFAULTS.failAfterMs,
} as const;

const D = NODE_DEFAULTS;

/** Raw environment -> validated, fully defaulted config; throws ConfigError naming the variable. */
export function loadNodeConfig(env: Env): NodeConfig {
  const pairs = readVar(env, 'NODE_CURRENCY_PAIRS', listOf(pairSchema));
  const reconnectInitialMs = readVar(
    env,
    'NODE_RECONNECT_INITIAL_MS',
    positiveIntSchema,
    D.NODE_RECONNECT_INITIAL_MS,
  );
  const reconnectMaxMs = readVar(
    env,
    'NODE_RECONNECT_MAX_MS',
    positiveIntSchema,
    D.NODE_RECONNECT_MAX_MS,
  );
  if (reconnectMaxMs < reconnectInitialMs) {
    throw new ConfigError(
      'NODE_RECONNECT_MAX_MS',
      `must be at least NODE_RECONNECT_INITIAL_MS (${reconnectInitialMs})`,
    );
  }
  return {
    controllerAddrs: readVar(
      env,
      'NODE_CONTROLLER_ADDR',
      listOf(dialAddrSchema),
      D.NODE_CONTROLLER_ADDR,
    ),
    pairs: [...new Set(pairs)],
    uuid: readVar(env, 'NODE_UUID', uuidSchema, randomUUID()).toLowerCase(),
    name: readVar(
      env,
      'NODE_NAME',
      z
        .string()
        .trim()
        .max(256, 'must be at most 256 characters')
        .regex(/^\P{Cc}*$/u, 'must not contain control characters (tab, newline, C0, C1, DEL)'),
      hostname(),
    ),
    priceIntervalMs: readVar(
      env,
      'NODE_PRICE_INTERVAL_MS',
      intervalSchema,
      D.NODE_PRICE_INTERVAL_MS,
    ),
    metricsAddr: readVar(env, 'METRICS_ADDR', listenAddrSchema, D.METRICS_ADDR),
    metricsWebConfig: readMetricsWebConfig(env),
    logLevel: readVar(env, 'LOG_LEVEL', logLevelSchema, D.LOG_LEVEL),
    reconnectInitialMs,
    reconnectMaxMs,
    connectTimeoutMs: readVar(
      env,
      'NODE_CONNECT_TIMEOUT_MS',
      positiveIntSchema,
      D.NODE_CONNECT_TIMEOUT_MS,
    ),
    priceSpanSampleRatio: readVar(
      env,
      'PRICE_SPAN_SAMPLE_RATIO',
      z.coerce
        .number({ message: 'must be a number from 0 to 1' })
        .min(0, 'must be a number from 0 to 1')
        .max(1, 'must be a number from 0 to 1'),
      D.PRICE_SPAN_SAMPLE_RATIO,
    ),
    tls: readClientTlsFromEnv(env, 'NODE'),
    token: readClientTokenFromEnv(env, 'NODE'),
    upstream: loadUpstreamConfig(env, pairs),
    ...NODE_TIMING_DEFAULTS,
  };
}
