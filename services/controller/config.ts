import {
  type Env,
  type HostPort,
  listenAddrSchema,
  logLevelSchema,
  positiveIntSchema,
  readVar,
} from '../shared/config';
import { DEFAULT_LIMITS, type HubLimits } from './hub';
import { readControllerAuthConfig } from '../shared/auth';
import { readServerTlsConfig } from '../shared/tls';
import { DEFAULT_CREDENTIALS_RELOAD_MS, type SecurityConfig } from './security';

export interface ControllerConfig {
  listenAddr: HostPort;
  streamsPerPair: number;
  metricsAddr: HostPort;
  logLevel: string;
  /** How long a graceful stop waits for streams to close before forcing them. */
  shutdownGraceMs: number;
  /** Largest inbound gRPC message accepted, in bytes. */
  maxMessageBytes?: number;
  /** What peers can make the controller hold; defaults when absent (programmatic use). */
  limits?: HubLimits;
  /** TLS and peer authentication on the gRPC port; absent: plaintext, no auth (docs/security.md). */
  security?: SecurityConfig;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/** Raw environment -> validated, fully defaulted config; throws ConfigError naming the variable. */
export function loadControllerConfig(env: Env): ControllerConfig {
  return {
    listenAddr: readVar(env, 'CONTROLLER_LISTEN_ADDR', listenAddrSchema, '0.0.0.0:5160'),
    streamsPerPair: readVar(env, 'CONTROLLER_STREAMS_PER_PAIR', positiveIntSchema, '1'),
    metricsAddr: readVar(env, 'METRICS_ADDR', listenAddrSchema, '0.0.0.0:9464'),
    logLevel: readVar(env, 'LOG_LEVEL', logLevelSchema, 'info'),
    shutdownGraceMs: readVar(env, 'CONTROLLER_SHUTDOWN_GRACE_MS', positiveIntSchema, '5000'),
    security: loadSecurityConfig(env),
    maxMessageBytes: readVar(
      env,
      'CONTROLLER_MAX_MESSAGE_BYTES',
      positiveIntSchema,
      String(DEFAULT_MAX_MESSAGE_BYTES),
    ),
    limits: {
      maxNodes: readVar(
        env,
        'CONTROLLER_MAX_NODES',
        positiveIntSchema,
        String(DEFAULT_LIMITS.maxNodes),
      ),
      maxPairsPerNode: readVar(
        env,
        'CONTROLLER_MAX_PAIRS_PER_NODE',
        positiveIntSchema,
        String(DEFAULT_LIMITS.maxPairsPerNode),
      ),
      maxCliStreams: readVar(
        env,
        'CONTROLLER_MAX_CLI_STREAMS',
        positiveIntSchema,
        String(DEFAULT_LIMITS.maxCliStreams),
      ),
      maxPendingPerCli: readVar(
        env,
        'CONTROLLER_MAX_PENDING_PER_CLI',
        positiveIntSchema,
        String(DEFAULT_LIMITS.maxPendingPerCli),
      ),
      maxQueuedMessages: readVar(
        env,
        'CONTROLLER_MAX_QUEUED_MESSAGES',
        positiveIntSchema,
        String(DEFAULT_LIMITS.maxQueuedMessages),
      ),
      slowWatcherMs: readVar(
        env,
        'CONTROLLER_SLOW_WATCHER_MS',
        positiveIntSchema,
        String(DEFAULT_LIMITS.slowWatcherMs),
      ),
    },
  };
}

/** TLS and tokens; undefined when neither is configured (the local default). */
function loadSecurityConfig(env: Env): SecurityConfig | undefined {
  const credentialsReloadMs = readVar(
    env,
    'CONTROLLER_CREDENTIALS_RELOAD_MS',
    positiveIntSchema,
    String(DEFAULT_CREDENTIALS_RELOAD_MS),
  );
  const tls = readServerTlsConfig(env);
  const auth = readControllerAuthConfig(env, tls?.clientCaFile !== undefined);
  if (!tls && !auth) return undefined;
  return { tls, auth, credentialsReloadMs };
}
