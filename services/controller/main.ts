#!/usr/bin/env node
import '../shared/compile-cache';
import { telemetry } from './otel';
import { createLogger } from '../shared/logger';
import { PROGRAMS } from '../shared/protocol';
import { fatal, handleProgramFlags, loadConfigOrExit, onShutdownSignal } from '../shared/program';
import { loadControllerConfig } from './config';
import { startController } from './controller';
import { controllerVariables } from './help';

const PROGRAM = PROGRAMS.controller;

async function main(): Promise<void> {
  // --help and --version before any config is read or port opened.
  const run = handleProgramFlags({
    program: PROGRAM,
    description: 'The currency-nodes controller: nodes and CLIs connect to it over gRPC.',
    variables: controllerVariables,
  });
  if (!run) return;
  const config = loadConfigOrExit(PROGRAM, () => loadControllerConfig(process.env));
  const logger = createLogger({ service: PROGRAM, level: config.logLevel });
  const controller = await startController(config, { logger });
  onShutdownSignal(async () => {
    await controller.stop();
    await telemetry.shutdown();
  });
}

main().catch((err: unknown) => fatal(PROGRAM, err));
