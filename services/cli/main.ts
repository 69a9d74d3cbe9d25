#!/usr/bin/env node
import '../shared/compile-cache';
import { telemetry } from './otel';
import { runCli } from './cli';
import { shownLines } from './format';
import { processIo } from './io';
import { EXIT } from '../shared/program';

const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
process.once('SIGTERM', () => stop.abort());

const io = processIo(stop);
void runCli(process.argv.slice(2), io)
  .catch((err: unknown) => {
    io.err(`currency-cli: ${shownLines(err instanceof Error ? err.message : String(err))}\n`);
    return EXIT.FAILED;
  })
  .then(async (code) => {
    await telemetry.shutdown();
    // Exiting before stdout drains would cut the output at what the pipe buffers (64 KiB).
    const failed = await io.flush();
    if (failed) {
      io.err(
        `currency-cli: could not write the output (${failed.message}): the reader of stdout went away\n`,
      );
      code = EXIT.FAILED;
    }
    process.exit(code);
  });
