#!/usr/bin/env node
import '../shared/compile-cache';
import { telemetry } from './otel';
import { PROGRAMS } from '../shared/protocol';
import { createLogger } from '../shared/logger';
import {
  EXIT,
  fatal,
  handleProgramFlags,
  loadConfigOrExit,
  onShutdownSignal,
} from '../shared/program';
import { loadNodeConfig } from './config';
import { nodeVariables } from './help';
import { startNode } from './node';

const PROGRAM = PROGRAMS.node;

async function main(): Promise<void> {
  // --help and --version before any config is read or port opened.
  const run = handleProgramFlags({
    program: PROGRAM,
    description: 'A currency-nodes node: streams prices for the pairs the controller asks for.',
    variables: nodeVariables,
  });
  if (!run) return;
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
