/**
 * The controller's configuration: raw environment -> validated, fully defaulted, typed.
 * Every default lives here, once; nothing downstream re-defaults (docs/configuration.md has the table).
 */
import {
  type Env,
  type HostPort,
  listenAddrSchema,
  logLevelSchema,
  positiveIntSchema,
  readVar,
} from '../shared/config';
import { z } from 'zod';
import { readControllerAuthConfig } from '../shared/auth';
import { readServerTlsConfig } from '../shared/tls';
import { type MetricsWebConfigSettings, readMetricsWebConfig } from '../shared/web-config';
import { DEFAULT_CREDENTIALS_RELOAD_MS, type SecurityConfig } from './security';
import { type LeaderElectionConfig, loadLeaderElectionConfig } from './leader/config';
import type { FollowConfig } from './leader/follower';
import { dialAddrSchema, formatHostPort } from '../shared/config';
import { readClientTokenFromEnv } from '../shared/auth';
import { readClientTlsFromEnv } from '../shared/tls-client';

/** What peers can make the controller hold, and how long it waits on them (CONTROLLER_MAX_*, *_MS). */
export interface ControllerLimits {
  /** Node streams open at once, registered or not (CONTROLLER_MAX_NODES). */
  maxNodes: number;
  maxPairsPerNode: number;
  /** Known pairs held at once; pairs announced beyond it are refused and counted. */
  maxKnownPairs: number;
  maxCliStreams: number;
  /** Commands a CLI stream may have waiting for node replies at once. */
  maxPendingPerCli: number;
  /** Messages queued for a peer that is not reading before it is disconnected. */
  maxQueuedMessages: number;
  /** How long a watcher may go without taking a single update before it is disconnected. */
  slowWatcherMs: number;
  /** A node stream that has not registered within this is closed. */
  registerTimeoutMs: number;
  /** A streamer that sends no price for a pair this long loses the pair (failover `stale`). */
  staleStreamMs: number;
  /** A known pair with no capable node this long is forgotten, with its metric series. */
  forgetPairAfterMs: number;
  /** A price dated further ahead of the controller's clock is refused. */
  maxPriceSkewMs: number;
}

export interface ControllerConfig {
  listenAddr: HostPort;
  streamsPerPair: number;
  metricsAddr: HostPort;
  /** METRICS_WEB_CONFIG_FILE: TLS / basic auth on the metrics port (docs/security.md). */
  metricsWebConfig?: MetricsWebConfigSettings;
  logLevel: string;
  /** How long a graceful stop waits for streams to close before forcing them. */
  shutdownGraceMs: number;
  /** Largest inbound gRPC message accepted, in bytes. */
  maxMessageBytes: number;
  limits: ControllerLimits;
  /** CONTROLLER_LEADER_ELECTION and the CONTROLLER_LEASE_* variables (docs/leader-election.md). */
  leader: LeaderElectionConfig;
  /**
   * Warm standby (CONTROLLER_FOLLOW_ADDR): where a standby watches the leader's prices, as
   * a CLI would, with the CLI's TLS and token variables (CLI_TLS_*, CLI_TOKEN*).
   */
  follow: FollowConfig;
  /** TLS and peer authentication on the gRPC port; neither set: plaintext, no auth (docs/security.md). */
  security: SecurityConfig;
  /** gRPC server reflection for grpcurl and the like (CONTROLLER_REFLECTION, docs/interop.md). */
  reflection: boolean;
}

/** The defaults of the variables above, as the operator writes them. */
export const CONTROLLER_DEFAULTS = {
  CONTROLLER_LISTEN_ADDR: '0.0.0.0:5160',
  CONTROLLER_STREAMS_PER_PAIR: '1',
  METRICS_ADDR: '0.0.0.0:9464',
  LOG_LEVEL: 'info',
  CONTROLLER_SHUTDOWN_GRACE_MS: '5000',
  CONTROLLER_MAX_MESSAGE_BYTES: String(4 * 1024 * 1024),
  CONTROLLER_MAX_NODES: '20000',
  CONTROLLER_MAX_PAIRS_PER_NODE: '1000',
  CONTROLLER_MAX_KNOWN_PAIRS: '10000',
  CONTROLLER_MAX_CLI_STREAMS: '1000',
  CONTROLLER_MAX_PENDING_PER_CLI: '1000',
  CONTROLLER_MAX_QUEUED_MESSAGES: '1000',
  CONTROLLER_SLOW_WATCHER_MS: '10000',
  CONTROLLER_REGISTER_TIMEOUT_MS: '10000',
  CONTROLLER_STALE_STREAM_MS: '30000',
  CONTROLLER_FORGET_PAIR_AFTER_MS: '3600000',
  CONTROLLER_MAX_PRICE_SKEW_MS: '5000',
  CONTROLLER_CREDENTIALS_RELOAD_MS: String(DEFAULT_CREDENTIALS_RELOAD_MS),
  CONTROLLER_REFLECTION: 'on',
} as const;

type Var = keyof typeof CONTROLLER_DEFAULTS;

const onOff = z.enum(['on', 'off']);

const int = (env: Env, name: Var) =>
  readVar(env, name, positiveIntSchema, CONTROLLER_DEFAULTS[name]);

/** Raw environment -> validated, fully defaulted config; throws ConfigError naming the variable. */
export function loadControllerConfig(env: Env): ControllerConfig {
  const d = CONTROLLER_DEFAULTS;
  const security = loadSecurityConfig(env);
  const webConfig = readMetricsWebConfig(env);
  return {
    listenAddr: readVar(env, 'CONTROLLER_LISTEN_ADDR', listenAddrSchema, d.CONTROLLER_LISTEN_ADDR),
    streamsPerPair: int(env, 'CONTROLLER_STREAMS_PER_PAIR'),
    metricsAddr: readVar(env, 'METRICS_ADDR', listenAddrSchema, d.METRICS_ADDR),
    // Re-read as often as the gRPC port's credentials.
    metricsWebConfig: webConfig && { ...webConfig, reloadMs: security.credentialsReloadMs },
    logLevel: readVar(env, 'LOG_LEVEL', logLevelSchema, d.LOG_LEVEL),
    shutdownGraceMs: int(env, 'CONTROLLER_SHUTDOWN_GRACE_MS'),
    security,
    leader: loadLeaderElectionConfig(env),
    follow: loadFollowConfig(env),
    reflection: readVar(env, 'CONTROLLER_REFLECTION', onOff, d.CONTROLLER_REFLECTION) === 'on',
    maxMessageBytes: int(env, 'CONTROLLER_MAX_MESSAGE_BYTES'),
    limits: {
      maxNodes: int(env, 'CONTROLLER_MAX_NODES'),
      maxPairsPerNode: int(env, 'CONTROLLER_MAX_PAIRS_PER_NODE'),
      maxKnownPairs: int(env, 'CONTROLLER_MAX_KNOWN_PAIRS'),
      maxCliStreams: int(env, 'CONTROLLER_MAX_CLI_STREAMS'),
      maxPendingPerCli: int(env, 'CONTROLLER_MAX_PENDING_PER_CLI'),
      maxQueuedMessages: int(env, 'CONTROLLER_MAX_QUEUED_MESSAGES'),
      slowWatcherMs: int(env, 'CONTROLLER_SLOW_WATCHER_MS'),
      registerTimeoutMs: int(env, 'CONTROLLER_REGISTER_TIMEOUT_MS'),
      staleStreamMs: int(env, 'CONTROLLER_STALE_STREAM_MS'),
      forgetPairAfterMs: int(env, 'CONTROLLER_FORGET_PAIR_AFTER_MS'),
      maxPriceSkewMs: int(env, 'CONTROLLER_MAX_PRICE_SKEW_MS'),
    },
  };
}

/** TLS and tokens; neither configured is the local default. */
function loadSecurityConfig(env: Env): SecurityConfig {
  const credentialsReloadMs = int(env, 'CONTROLLER_CREDENTIALS_RELOAD_MS');
  const tls = readServerTlsConfig(env);
  const auth = readControllerAuthConfig(env, tls?.clientCaFile !== undefined);
  return { tls, auth, credentialsReloadMs };
}

function loadFollowConfig(env: Env): FollowConfig {
  const raw = env.CONTROLLER_FOLLOW_ADDR;
  if (raw === undefined || raw.trim() === '') return {};
  return {
    address: formatHostPort(readVar(env, 'CONTROLLER_FOLLOW_ADDR', dialAddrSchema)),
    tls: readClientTlsFromEnv(env, 'CLI'),
    token: readClientTokenFromEnv(env, 'CLI'),
  };
}
