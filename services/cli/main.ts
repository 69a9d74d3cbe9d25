#!/usr/bin/env node
import '../shared/compile-cache';
import { telemetry } from './otel';
import { runCli } from './cli';
import { processIo } from './io';
import { EXIT } from '../shared/program';

const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
process.once('SIGTERM', () => stop.abort());

void runCli(process.argv.slice(2), processIo(stop.signal))
  .catch((err: unknown) => {
    process.stderr.write(`currency-cli: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.FAILED;
  })
  .then(async (code) => {
    await telemetry.shutdown();
    process.exit(code);
  });
