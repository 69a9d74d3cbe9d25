import {
  type Env,
  type HostPort,
  listenAddrSchema,
  logLevelSchema,
  positiveIntSchema,
  readVar,
} from '../shared/config';

export interface ControllerConfig {
  listenAddr: HostPort;
  streamsPerPair: number;
  metricsAddr: HostPort;
  logLevel: string;
  /** How long a graceful stop waits for streams to close before forcing them. */
  shutdownGraceMs: number;
}

/** Raw environment -> validated, fully defaulted config; throws ConfigError naming the variable. */
export function loadControllerConfig(env: Env): ControllerConfig {
  return {
    listenAddr: readVar(env, 'CONTROLLER_LISTEN_ADDR', listenAddrSchema, '0.0.0.0:5160'),
    streamsPerPair: readVar(env, 'CONTROLLER_STREAMS_PER_PAIR', positiveIntSchema, '1'),
    metricsAddr: readVar(env, 'METRICS_ADDR', listenAddrSchema, '0.0.0.0:9464'),
    logLevel: readVar(env, 'LOG_LEVEL', logLevelSchema, 'info'),
    shutdownGraceMs: readVar(env, 'CONTROLLER_SHUTDOWN_GRACE_MS', positiveIntSchema, '5000'),
  };
}
