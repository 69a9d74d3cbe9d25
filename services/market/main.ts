#!/usr/bin/env node
/**
 * currency-market: the test and demo market (server.ts) as a program, for compose's
 * `upstream` profile. Not one of the product programs (no npm bin entry):
 *   node dist/services/market/main.js
 */
import '../shared/compile-cache';
import { loadConfigOrExit, fatal, handleProgramFlags, onShutdownSignal } from '../shared/program';
import { createLogger } from '../shared/logger';
import { loadMarketConfig, marketVariables } from './config';
import { startMarketServer } from './server';

const PROGRAM = 'currency-market';

async function main(): Promise<void> {
  const run = handleProgramFlags({
    program: PROGRAM,
    description:
      'A simulated price market for tests and demos: quotes over HTTP, tickers over WebSocket, ' +
      'and faults switched on per symbol and client (POST /control/faults; no authentication).',
    variables: marketVariables,
  });
  if (!run) return;
  const config = loadConfigOrExit(PROGRAM, () => loadMarketConfig(process.env));
  const logger = createLogger({ service: PROGRAM, level: config.logLevel });
  // listenAddrSchema keeps an IPv6 host's brackets; listen() takes the bare address.
  const host = config.listenAddr.host.replace(/^\[(.*)\]$/, '$1');
  const market = await startMarketServer({
    host,
    port: config.listenAddr.port,
    tickMs: config.tickMs,
    logger,
  });
  onShutdownSignal(() => market.close());
}

main().catch((err: unknown) => fatal(PROGRAM, err));
