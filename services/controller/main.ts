#!/usr/bin/env node
import '../shared/compile-cache';
import { telemetry } from './otel';
import { createLogger } from '../shared/logger';
import { fatal, loadConfigOrExit, onShutdownSignal } from '../shared/program';
import { loadControllerConfig } from './config';
import { startController } from './controller';

const PROGRAM = 'currency-controller';

async function main(): Promise<void> {
  const config = loadConfigOrExit(PROGRAM, () => loadControllerConfig(process.env));
  const logger = createLogger({ service: PROGRAM, level: config.logLevel });
  const controller = await startController(config, { logger });
  onShutdownSignal(async () => {
    await controller.stop();
    await telemetry.shutdown();
  });
}

main().catch((err: unknown) => fatal(PROGRAM, err));
