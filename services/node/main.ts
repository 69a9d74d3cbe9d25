#!/usr/bin/env node
import '../shared/compile-cache';
import { telemetry } from './otel';
import { createLogger } from '../shared/logger';
import { EXIT, fatal, loadConfigOrExit, onShutdownSignal } from '../shared/program';
import { loadNodeConfig } from './config';
import { startNode } from './node';

const PROGRAM = 'currency-node';

async function main(): Promise<void> {
  const config = loadConfigOrExit(PROGRAM, () => loadNodeConfig(process.env));
  const logger = createLogger({ service: PROGRAM, level: config.logLevel });
  const node = await startNode(config, {
    logger,
    onShutdownRequested: () => {
      void telemetry.shutdown().finally(() => process.exit(EXIT.OK));
    },
  });
  onShutdownSignal(async () => {
    await node.stop();
    await telemetry.shutdown();
  });
}

main().catch((err: unknown) => fatal(PROGRAM, err));
