/** The market program's variables (MARKET_*): raw environment -> validated config. */
import {
  type Env,
  type HostPort,
  formatHostPort,
  listenAddrSchema,
  logLevelSchema,
  positiveIntSchema,
  readVar,
} from '../shared/config';
import type { VarHelp } from '../shared/program';

export interface MarketConfig {
  listenAddr: HostPort;
  tickMs: number;
  logLevel: string;
}

export const MARKET_DEFAULTS = {
  listenAddr: '0.0.0.0:8080',
  tickMs: '1000',
  logLevel: 'info',
} as const;

export function loadMarketConfig(env: Env): MarketConfig {
  return {
    listenAddr: readVar(env, 'MARKET_LISTEN_ADDR', listenAddrSchema, MARKET_DEFAULTS.listenAddr),
    tickMs: readVar(env, 'MARKET_TICK_MS', positiveIntSchema, MARKET_DEFAULTS.tickMs),
    logLevel: readVar(env, 'LOG_LEVEL', logLevelSchema, MARKET_DEFAULTS.logLevel),
  };
}

/** As `--help` lists them; defaults read back from loadMarketConfig (one source). */
export function marketVariables(): VarHelp[] {
  const d = loadMarketConfig({});
  return [
    {
      name: 'MARKET_LISTEN_ADDR',
      meaning: 'HOST:PORT of HTTP (/v1/quote/{symbol}), WebSocket (/v1/stream) and /control/faults',
      default: formatHostPort(d.listenAddr),
    },
    {
      name: 'MARKET_TICK_MS',
      meaning: 'interval of the WebSocket tickers, ms',
      default: String(d.tickMs),
    },
    {
      name: 'LOG_LEVEL',
      meaning: 'fatal, error, warn, info, debug, trace or silent',
      default: d.logLevel,
    },
  ];
}
